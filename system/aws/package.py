"""A Lambda function's deployment package: the zip of what its handler imports.

The handler module and every module it imports from its code folder go in (found by
the standard library's ``modulefinder``, which reads imports without running them);
the standard library and what the Lambda Python runtime already holds (boto3 and its
dependencies) stay out. Any other import cannot be met in Lambda and is refused here.

The zip is deterministic (sorted names, fixed times and modes), so the same code gives
the same ``CodeSha256`` and a second deploy sees nothing to update.
"""

from __future__ import annotations

import base64
import hashlib
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


def package_function(spec: FunctionSpec) -> FunctionPackage:
    root = code_root(spec)
    module = spec.handler.rpartition(".")[0]
    provided = sys.stdlib_module_names | RUNTIME_PACKAGES
    finder = ModuleFinder(path=[str(root)], excludes=sorted(provided))
    try:
        finder.import_hook(module)
    except ImportError:
        raise PackagingError(f"{spec.name}: handler module {module!r} is not in {root}") from None
    missing = sorted({name for name in finder.any_missing()
                      if name.split(".")[0] not in provided})
    if missing:
        raise PackagingError(f"{spec.name} imports {', '.join(missing)}, which the Lambda "
                             f"runtime lacks: copy it into the code folder {root}")
    files = sorted({Path(m.__file__).resolve().relative_to(root).as_posix()
                    for m in finder.modules.values() if m.__file__})
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in files:
            entry = zipfile.ZipInfo(name, date_time=ZIP_TIME)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            archive.writestr(entry, (root / name).read_bytes())
    return FunctionPackage(spec.name, tuple(files), buffer.getvalue())
