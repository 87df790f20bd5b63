package httpapi

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/shmmon/shmmon/config"
	"github.com/shmmon/shmmon/fleet"
	"github.com/shmmon/shmmon/monitor"
)

// manifest is one file of contrib/kubernetes, decoded: its ConfigMap's shmmon.toml (parsed as
// serve parses it) and its Deployment.
type manifest struct {
	conf   *config.File
	deploy appsv1.Deployment
}

// decodeManifest decodes the YAML documents of data strictly (a field the Kubernetes API
// types do not have is an error) into a ConfigMap and a Deployment, nothing else.
func decodeManifest(name string, data []byte) (manifest, error) {
	var m manifest
	var maps []corev1.ConfigMap
	var deploys []appsv1.Deployment
	for i, doc := range bytes.Split(data, []byte("\n---\n")) {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			return m, fmt.Errorf("document %d: %w", i+1, err)
		}
		var err error
		switch tm.APIVersion + " " + tm.Kind {
		case "v1 ConfigMap":
			var cm corev1.ConfigMap
			err = yaml.UnmarshalStrict(doc, &cm)
			maps = append(maps, cm)
		case "apps/v1 Deployment":
			var d appsv1.Deployment
			err = yaml.UnmarshalStrict(doc, &d)
			deploys = append(deploys, d)
		default:
			err = fmt.Errorf("kind %q of %q: want a v1 ConfigMap or an apps/v1 Deployment", tm.Kind, tm.APIVersion)
		}
		if err != nil {
			return m, fmt.Errorf("document %d: %w", i+1, err)
		}
	}
	if len(maps) != 1 || len(deploys) != 1 {
		return m, fmt.Errorf("%d ConfigMaps and %d Deployments, want one of each", len(maps), len(deploys))
	}
	conf, err := config.Parse(name+": shmmon.toml", []byte(maps[0].Data["shmmon.toml"]))
	if err != nil {
		return m, err
	}
	m.conf, m.deploy = conf, deploys[0]
	var mounted bool
	for _, v := range m.deploy.Spec.Template.Spec.Volumes {
		mounted = mounted || v.ConfigMap != nil && v.ConfigMap.Name == maps[0].Name
	}
	if !mounted {
		return m, fmt.Errorf("the Deployment mounts no volume of the ConfigMap %q", maps[0].Name)
	}
	return m, nil
}

// probes returns the container's probes by name.
func probes(c corev1.Container) map[string]*corev1.Probe {
	out := map[string]*corev1.Probe{}
	for name, p := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe, "startup": c.StartupProbe} {
		if p != nil {
			out[name] = p
		}
	}
	return out
}

// TestKubernetesManifests decodes contrib/kubernetes strictly into the Kubernetes API types,
// parses the shmmon.toml of each as serve does, and checks that every probe asks serve's port
// for a path serve serves (answered 200 by an endpoint of that configuration's workers, all
// running and ready); and what each way of running needs: serve as the entrypoint with
// /healthz and /readyz, or as a sidecar sharing /dev/shm (an emptyDir in memory) and the
// process namespace, with a per-worker /healthz/NAME on the application's container.
func TestKubernetesManifests(t *testing.T) {
	files, err := filepath.Glob("../contrib/kubernetes/*.yaml")
	if err != nil || len(files) != 2 {
		t.Fatalf("contrib/kubernetes: %v %v, want two manifests", files, err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			m, err := decodeManifest(filepath.Base(file), data)
			if err != nil {
				t.Fatal(err)
			}
			_, port, err := net.SplitHostPort(m.conf.Serve.Listen)
			if err != nil || strings.HasPrefix(m.conf.Serve.Listen, "127.") {
				t.Fatalf("[serve] listen %q: want an address the kubelet can reach", m.conf.Serve.Listen)
			}
			src := fakeSource{}
			for _, w := range m.conf.Workers {
				src.ws = append(src.ws, fleet.WorkerStatus{Worker: w, Books: monitor.Books{Phase: monitor.Running, Ready: true}})
			}
			s := New(src)
			spec := m.deploy.Spec.Template.Spec
			var paths []string
			for _, c := range spec.Containers {
				for kind, p := range probes(c) {
					if p.HTTPGet == nil {
						t.Errorf("container %s: %s probe is not an httpGet of serve", c.Name, kind)
						continue
					}
					if got := p.HTTPGet.Port.String(); got != port {
						t.Errorf("container %s: %s probe on port %s, serve listens on %s", c.Name, kind, got, port)
					}
					rec := httptest.NewRecorder()
					s.ServeHTTP(rec, httptest.NewRequest("GET", p.HTTPGet.Path, nil))
					if rec.Code != http.StatusOK {
						t.Errorf("container %s: %s probe %s: serve answers %d", c.Name, kind, p.HTTPGet.Path, rec.Code)
					}
					paths = append(paths, c.Name+" "+kind+" "+p.HTTPGet.Path)
				}
			}
			shmmon := func(c corev1.Container) bool {
				return len(c.Command) >= 2 && filepath.Base(c.Command[0]) == "shmmon" && c.Command[1] == "serve"
			}
			switch filepath.Base(file) {
			case "entrypoint.yaml":
				c := spec.Containers[0]
				if len(spec.Containers) != 1 || !shmmon(c) || len(m.conf.Workers) == 0 || m.conf.Workers[0].Command == nil {
					t.Errorf("want one container whose entrypoint is shmmon serve, starting the workers")
				}
				for _, want := range []string{c.Name + " liveness /healthz", c.Name + " readiness /readyz"} {
					if !slices.Contains(paths, want) {
						t.Errorf("no %q in %v", want, paths)
					}
				}
			case "sidecar.yaml":
				if spec.ShareProcessNamespace == nil || !*spec.ShareProcessNamespace {
					t.Error("shareProcessNamespace is not true: the sidecar could not signal the workers")
				}
				shm := ""
				for _, v := range spec.Volumes {
					if v.EmptyDir != nil && v.EmptyDir.Medium == corev1.StorageMediumMemory {
						for _, c := range spec.Containers {
							for _, vm := range c.VolumeMounts {
								if vm.Name == v.Name && vm.MountPath == "/dev/shm" {
									shm = v.Name
								}
							}
						}
					}
				}
				var app, side int
				for _, c := range spec.Containers {
					mountsShm := slices.ContainsFunc(c.VolumeMounts, func(vm corev1.VolumeMount) bool {
						return vm.Name == shm && vm.MountPath == "/dev/shm"
					})
					if !mountsShm {
						t.Errorf("container %s does not mount the in-memory emptyDir at /dev/shm", c.Name)
					}
					if shmmon(c) {
						side++
						continue
					}
					app++
					for _, w := range m.conf.Workers {
						if w.Supervised() {
							t.Errorf("worker %s is supervised: a sidecar watches the application's processes", w.Name)
						}
						if !slices.Contains(paths, c.Name+" liveness /healthz/"+w.Name) {
							t.Errorf("container %s: no liveness probe on /healthz/%s in %v", c.Name, w.Name, paths)
						}
					}
				}
				if app != 1 || side != 1 {
					t.Errorf("%d application and %d shmmon containers, want one of each", app, side)
				}
			default:
				t.Errorf("a manifest this test does not know")
			}
		})
	}
}

// TestKubernetesManifestStrict: the decoding of TestKubernetesManifests fails on a field the
// API does not have, a probe path serve does not serve fails its check, and so does a
// ConfigMap shmmon.toml serve would refuse.
func TestKubernetesManifestStrict(t *testing.T) {
	data, err := os.ReadFile("../contrib/kubernetes/entrypoint.yaml")
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Replace(data, []byte("periodSeconds: 10"), []byte("periodSecs: 10"), 1)
	if _, err := decodeManifest("bad.yaml", bad); err == nil || !strings.Contains(err.Error(), "periodSecs") {
		t.Errorf("an unknown field: %v, want an error naming it", err)
	}
	bad = bytes.Replace(data, []byte("stalls = 5"), []byte("stalls = 0"), 1)
	if _, err := decodeManifest("bad.yaml", bad); err == nil || !strings.Contains(err.Error(), "stalls") {
		t.Errorf("an invalid shmmon.toml: %v, want its error", err)
	}
	rec := httptest.NewRecorder()
	New(fakeSource{}).ServeHTTP(rec, httptest.NewRequest("GET", "/health", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("/health: %d, want 404 (a probe path serve does not serve)", rec.Code)
	}
}
