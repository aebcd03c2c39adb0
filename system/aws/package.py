"""A Lambda function's deployment package: the zip of what its handler imports.

The handler module and every module it imports from its code folder go in (found by
the standard library's ``modulefinder``, which reads imports without running them);
the standard library and what the Lambda Python runtime already holds (boto3 and its
dependencies) stay out. The distributions the function's ``requirements`` name go in as
installed where chat-harness runs (their packages and dist-info, found by
``importlib.metadata``): a zip is Lambda's only place for them, and only pure Python
runs on Lambda's platform whatever platform built the zip. Their own imports are not
followed (an optional one, such as PyJWT's ``cryptography``, is guarded where it is
made), so a distribution another one requires is named as a requirement too. Any other
import cannot be met in Lambda and is refused here.

The zip is deterministic (sorted names, fixed times and modes, no bytecode), so the same
code gives the same ``CodeSha256`` and a second deploy sees nothing to update.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import importlib.util
import io
import sys
import zipfile
from dataclasses import dataclass
from modulefinder import ModuleFinder
from pathlib import Path

from system.routes import FunctionSpec

# What the Lambda Python runtimes ship besides the standard library:
# https://docs.aws.amazon.com/lambda/latest/dg/lambda-python.html ("Runtime-included SDK").
RUNTIME_PACKAGES = frozenset({"boto3", "botocore", "s3transfer", "jmespath", "dateutil",
                              "urllib3", "six"})
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest a zip can say: the same for every build
# Files built for one platform (extension modules, shared libraries): not for Lambda's.
COMPILED_SUFFIXES = frozenset({".so", ".pyd", ".dylib", ".dll"})
METADATA_SUFFIXES = (".dist-info", ".egg-info")


class PackagingError(ValueError):
    pass


@dataclass(frozen=True)
class FunctionPackage:
    function: str
    files: tuple[str, ...]
    zip_bytes: bytes

    @property
    def code_sha256(self) -> str:
        """As Lambda reports it: base64 of the zip's SHA-256."""
        return base64.b64encode(hashlib.sha256(self.zip_bytes).digest()).decode()


@dataclass(frozen=True)
class InstalledRequirement:
    """A distribution as the zip takes it from where chat-harness runs."""

    distribution: str
    packages: frozenset[str]  # the top-level names it is imported by
    files: dict[str, Path]  # name in the zip -> the installed file


def code_root(spec: FunctionSpec) -> Path:
    """The folder the handler imports from: its ``code`` folder, or else the folder that
    holds the handler's top-level package where the harness runs."""
    if spec.code_dir is not None:
        return spec.code_dir
    top = spec.handler.split(".")[0]
    found = importlib.util.find_spec(top)
    if found is None or found.origin is None:
        raise PackagingError(f"{spec.name}: cannot find module {top!r} of handler "
                             f"{spec.handler!r}; give the function a code folder")
    origin = Path(found.origin).resolve()
    return origin.parent.parent if found.submodule_search_locations else origin.parent


def installed_requirement(spec: FunctionSpec, requirement: str) -> InstalledRequirement:
    """The files of ``requirement`` in site-packages (its RECORD), bytecode left out;
    refused if it is not installed or not pure Python."""
    try:
        distribution = importlib.metadata.distribution(requirement)
    except importlib.metadata.PackageNotFoundError:
        raise PackagingError(f"{spec.name} requires {requirement}, which is not installed "
                             f"where chat-harness runs: pip install {requirement}") from None
    installed = [path for path in distribution.files or ()
                 if ".." not in path.parts and "__pycache__" not in path.parts]
    compiled = sorted(str(path) for path in installed if path.suffix in COMPILED_SUFFIXES)
    if compiled:
        raise PackagingError(f"{spec.name} requires {requirement}, which is not pure Python "
                             f"({compiled[0]}): install a build for Lambda's platform into "
                             f"the code folder instead of naming it in requirements")
    packages = frozenset(
        path.parts[0] if len(path.parts) > 1 else path.stem for path in installed
        if not path.parts[0].endswith(METADATA_SUFFIXES)
        and (len(path.parts) > 1 or path.suffix == ".py"))
    if not packages:
        raise PackagingError(f"{spec.name} requires {requirement}, whose installation lists "
                             f"no modules: reinstall it with pip install {requirement}")
    return InstalledRequirement(requirement, packages, {
        path.as_posix(): Path(distribution.locate_file(path)) for path in installed})


def package_function(spec: FunctionSpec) -> FunctionPackage:
    root = code_root(spec)
    module = spec.handler.rpartition(".")[0]
    requirements = [installed_requirement(spec, name) for name in spec.requirements]
    provided = (sys.stdlib_module_names | RUNTIME_PACKAGES).union(
        *(requirement.packages for requirement in requirements))
    finder = ModuleFinder(path=[str(root)], excludes=sorted(provided))
    try:
        finder.import_hook(module)
    except ImportError:
        raise PackagingError(f"{spec.name}: handler module {module!r} is not in {root}") from None
    missing = sorted({name for name in finder.any_missing()
                      if name.split(".")[0] not in provided})
    if missing:
        raise PackagingError(f"{spec.name} imports {', '.join(missing)}, which the Lambda "
                             f"runtime lacks: name its distribution in the function's "
                             f"requirements, or copy it into the code folder {root}")
    sources = {Path(m.__file__).resolve().relative_to(root).as_posix(): Path(m.__file__)
               for m in finder.modules.values() if m.__file__}
    for requirement in requirements:
        sources.update(requirement.files)
    files = sorted(sources)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in files:
            entry = zipfile.ZipInfo(name, date_time=ZIP_TIME)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            archive.writestr(entry, sources[name].read_bytes())
    return FunctionPackage(spec.name, tuple(files), buffer.getvalue())
