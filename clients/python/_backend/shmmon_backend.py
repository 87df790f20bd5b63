"""The PEP 517 build backend of the shmmon package, standard library only.

pip builds a package in an isolated environment into which it first installs the backend the
package names; a backend from an index (setuptools, flit) needs the network for that. This one
is in the source tree (pyproject.toml's backend-path), so `pip install ./clients/python` works
offline. It builds a pure-Python wheel of the package directory shmmon/ and an sdist of the
tree, with the name and version of pyproject.toml's [project] table.
"""

import base64
import hashlib
import io
import os
import re
import tarfile
import zipfile

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_PACKAGE = "shmmon"
_SDIST_FILES = ["pyproject.toml", "_backend/shmmon_backend.py"]


def _project():
    """Name, version, summary and Requires-Python from pyproject.toml's [project] table."""
    with open(os.path.join(_ROOT, "pyproject.toml"), encoding="utf-8") as f:
        text = f.read()
    table = text.split("[project]", 1)[1].split("\n[", 1)[0]
    fields = dict(re.findall(r'^([a-z-]+)\s*=\s*"([^"]*)"', table, re.M))
    return fields["name"], fields["version"], fields.get("description", ""), fields.get("requires-python", "")


def _metadata():
    name, version, summary, python = _project()
    meta = "Metadata-Version: 2.1\nName: %s\nVersion: %s\nSummary: %s\n" % (name, version, summary)
    if python:
        meta += "Requires-Python: %s\n" % python
    return name, version, meta


def _package_files():
    """The package's files, as paths relative to the tree's root, sorted."""
    out = []
    for d, dirs, files in os.walk(os.path.join(_ROOT, _PACKAGE)):
        dirs[:] = sorted(x for x in dirs if x != "__pycache__")
        for f in sorted(files):
            if not f.endswith((".pyc", ".pyo")):
                out.append(os.path.relpath(os.path.join(d, f), _ROOT))
    return out


def _record_line(path, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return "%s,sha256=%s,%d\n" % (path, digest, len(data))


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    name, version, meta = _metadata()
    info = "%s-%s.dist-info" % (name, version)
    wheel = "%s-%s-py3-none-any.whl" % (name, version)
    entries = []
    for rel in _package_files():
        with open(os.path.join(_ROOT, rel), "rb") as f:
            entries.append((rel.replace(os.sep, "/"), f.read()))
    entries.append((info + "/METADATA", meta.encode()))
    entries.append((info + "/WHEEL", b"Wheel-Version: 1.0\nGenerator: shmmon_backend\nRoot-Is-Purelib: true\nTag: py3-none-any\n"))
    record = "".join(_record_line(p, d) for p, d in entries) + info + "/RECORD,,\n"
    entries.append((info + "/RECORD", record.encode()))
    with zipfile.ZipFile(os.path.join(wheel_directory, wheel), "w", zipfile.ZIP_DEFLATED) as z:
        for path, data in entries:
            z.writestr(zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0)), data, zipfile.ZIP_DEFLATED)
    return wheel


def build_sdist(sdist_directory, config_settings=None):
    name, version, meta = _metadata()
    base = "%s-%s" % (name, version)
    with tarfile.open(os.path.join(sdist_directory, base + ".tar.gz"), "w:gz", format=tarfile.PAX_FORMAT) as t:
        for rel in _SDIST_FILES + _package_files():
            t.add(os.path.join(_ROOT, rel), arcname=base + "/" + rel.replace(os.sep, "/"), recursive=False)
        pkg_info = tarfile.TarInfo(base + "/PKG-INFO")
        pkg_info.size = len(meta.encode())
        t.addfile(pkg_info, io.BytesIO(meta.encode()))
    return base + ".tar.gz"
