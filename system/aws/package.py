"""A Lambda function's deployment package: the zip of what its handler imports.

The handler module and every module it imports from its code folder go in (found by
the standard library's ``modulefinder``, which reads imports without running them);
the standard library and what the Lambda Python runtime already holds (boto3 and its
dependencies) stay out. The distributions the function's ``requirements`` name go in as
installed where chat-harness runs (their packages and dist-info, found by
``importlib.metadata``): a zip is Lambda's only place for them, and only pure Python
runs on Lambda's platform whatever platform built the zip. So do the distributions those
require, followed as pip follows them to install for Lambda: each one's ``Requires-Dist``,
its environment markers evaluated for Lambda's environment (Linux, CPython at the
runtime's version, x86_64) and its extras honoured (``"PyJWT[crypto]"`` brings
cryptography, ``"PyJWT"`` does not), each distribution once, none the runtime ships.
Their imports are not followed beyond that (an optional one, such as PyJWT's
``cryptography``, is guarded where it is made). Any other import cannot be met in Lambda
and is refused here.

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

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from system.routes import FunctionSpec

# A current Python runtime: https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html
RUNTIME = "python3.13"
# What the Lambda Python runtimes ship besides the standard library, each distribution with
# the top-level names it is imported by:
# https://docs.aws.amazon.com/lambda/latest/dg/lambda-python.html ("Runtime-included SDK").
RUNTIME_DISTRIBUTIONS = {"boto3": ("boto3",), "botocore": ("botocore",),
                         "s3transfer": ("s3transfer",), "jmespath": ("jmespath",),
                         "python-dateutil": ("dateutil",), "urllib3": ("urllib3",),
                         "six": ("six",)}
RUNTIME_PACKAGES = frozenset(name for names in RUNTIME_DISTRIBUTIONS.values() for name in names)
# Lambda's environment as PEP 508 markers see it (https://peps.python.org/pep-0508/): Amazon
# Linux, CPython at the runtime's version (its patch release unknown here: the first), and
# x86_64, Lambda's default architecture (deploy sets no Architectures).
PYTHON_VERSION = RUNTIME.removeprefix("python")
LAMBDA_MARKER_ENVIRONMENT = {
    "implementation_name": "cpython", "implementation_version": f"{PYTHON_VERSION}.0",
    "os_name": "posix", "platform_machine": "x86_64", "platform_release": "",
    "platform_system": "Linux", "platform_version": "", "python_full_version":
    f"{PYTHON_VERSION}.0", "platform_python_implementation": "CPython",
    "python_version": PYTHON_VERSION, "sys_platform": "linux"}
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
    requires: tuple[str, ...] = ()  # its Requires-Dist, as its metadata lists them


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


def requiring(spec: FunctionSpec, chain: tuple[str, ...]) -> str:
    """How a refusal names a distribution: "F requires a, which requires b"."""
    return f"{spec.name} requires " + ", which requires ".join(chain)


def installed_requirement(spec: FunctionSpec, chain: tuple[str, ...]) -> InstalledRequirement:
    """The files of the last distribution of ``chain`` (the function's requirement, then
    what each requires) in site-packages (its RECORD), bytecode left out; refused if it is
    not installed or not pure Python."""
    requirement = chain[-1]
    try:
        distribution = importlib.metadata.distribution(requirement)
    except importlib.metadata.PackageNotFoundError:
        raise PackagingError(f"{requiring(spec, chain)}, which is not installed where "
                             f"chat-harness runs: pip install {requirement}") from None
    installed = [path for path in distribution.files or ()
                 if ".." not in path.parts and "__pycache__" not in path.parts]
    compiled = sorted(str(path) for path in installed if path.suffix in COMPILED_SUFFIXES)
    if compiled:
        raise PackagingError(f"{requiring(spec, chain)}, which is not pure Python "
                             f"({compiled[0]}): install a build for Lambda's platform into "
                             f"the code folder instead of naming it in requirements")
    packages = frozenset(
        path.parts[0] if len(path.parts) > 1 else path.stem for path in installed
        if not path.parts[0].endswith(METADATA_SUFFIXES)
        and (len(path.parts) > 1 or path.suffix == ".py"))
    if not packages:
        raise PackagingError(f"{requiring(spec, chain)}, whose installation lists no "
                             f"modules: reinstall it with pip install {requirement}")
    return InstalledRequirement(requirement, packages, {
        path.as_posix(): Path(distribution.locate_file(path)) for path in installed},
        tuple(distribution.requires or ()))


def parsed_requirement(spec: FunctionSpec, text: str, chain: tuple[str, ...]) -> Requirement:
    try:
        return Requirement(text)
    except InvalidRequirement as error:
        whose = f"{requiring(spec, chain)}, whose metadata" if chain else spec.name
        raise PackagingError(f"{whose} names requirement {text!r}, which is not a PEP 508 "
                             f"requirement: {str(error).splitlines()[0]}") from None


def on_lambda(requirement: Requirement, extra: str = "") -> bool:
    """Whether pip installing for Lambda takes ``requirement`` (with ``extra`` asked of the
    distribution that requires it)."""
    return requirement.marker is None or requirement.marker.evaluate(
        {**LAMBDA_MARKER_ENVIRONMENT, "extra": extra})


def required_distributions(spec: FunctionSpec) -> list[InstalledRequirement]:
    """The distributions ``spec.requirements`` name and, transitively, those they require
    on Lambda with the extras asked of them, each once (by canonical name); those the
    runtime ships are neither packed nor followed unless named by the function itself."""
    pending = [(requirement, ()) for requirement in
               (parsed_requirement(spec, text, ()) for text in spec.requirements)
               if on_lambda(requirement)]
    installed: dict[str, InstalledRequirement] = {}
    followed: dict[str, set[str]] = {}  # canonical name -> the extras already followed
    while pending:
        requirement, via = pending.pop(0)
        key = canonicalize_name(requirement.name)
        if via and key in RUNTIME_DISTRIBUTIONS:
            continue
        chain = (*via, requirement.name)
        if key not in installed:
            installed[key] = installed_requirement(spec, chain)
            followed[key] = set()
        for extra in sorted({"", *requirement.extras} - followed[key]):
            followed[key].add(extra)
            pending.extend((dependency, chain) for dependency in
                           (parsed_requirement(spec, text, chain)
                            for text in installed[key].requires)
                           if on_lambda(dependency, extra))
    return list(installed.values())


def package_function(spec: FunctionSpec) -> FunctionPackage:
    root = code_root(spec)
    module = spec.handler.rpartition(".")[0]
    requirements = required_distributions(spec)
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
