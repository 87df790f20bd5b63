package worker_test

import (
	"fmt"
	"os"

	"github.com/shmmon/shmmon/shmobj"
	"github.com/shmmon/shmmon/worker"
)

// A program run by `shmmon run` beats from its main loop; SHMMON_NAME tells it which object.
func ExampleBeat() {
	// What `shmmon run` does before it starts the program: publish the object and name it in
	// the program's environment.
	name := fmt.Sprintf("shmmon-example-beat-%d", os.Getpid())
	seg, _ := shmobj.Publish(name, shmobj.PublishOptions{})
	defer shmobj.Remove(name)
	defer seg.Close()
	os.Setenv(worker.EnvName, name)
	defer os.Unsetenv(worker.EnvName)

	for range 3 { // the work loop of a real program
		// ... do one unit of work ...
		worker.Beat()
	}
	seq, _ := seg.Seq() // what the monitor reads
	fmt.Println("sequence:", seq)
	// Output: sequence: 3
}

// A worker that knows its object's name opens it directly.
func ExampleOpen() {
	name := fmt.Sprintf("shmmon-example-%d", os.Getpid())
	seg, _ := shmobj.Publish(name, shmobj.PublishOptions{}) // what the monitor does
	defer shmobj.Remove(name)
	defer seg.Close()

	w, err := worker.Open(name)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer w.Close()
	w.Beat()
	w.Beat()
	seq, _ := seg.Seq()
	fmt.Println("sequence:", seq)
	// Output: sequence: 2
}
