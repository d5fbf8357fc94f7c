#!/usr/bin/env bash
# Packaging check (part of `make test`): build the sdist and the wheel, install the wheel with
# its `testing` extra into a clean virtualenv, and run `supportflow demo` and the README's Python
# example from there, outside the source tree. Uses pip's configured indexes only.
#
#   scripts/check_package.sh [PYTHON]     PYTHON builds the packages (default: .venv/bin/python)
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
python="${1:-$root/.venv/bin/python}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

fail() {
	echo "package-check: FAILED: $*" >&2
	exit 1
}

echo "package-check: building the sdist and the wheel"
"$python" -m build --outdir "$tmp/dist" "$root" >"$tmp/build.log" 2>&1 ||
	{ cat "$tmp/build.log" >&2; fail "python -m build"; }
sdists=("$tmp"/dist/supportflow-*.tar.gz)
wheels=("$tmp"/dist/supportflow-*-py3-none-any.whl)
[ -f "${sdists[0]}" ] || fail "no sdist in $tmp/dist"
[ -f "${wheels[0]}" ] || fail "no wheel in $tmp/dist"
wheel="${wheels[0]}"
"$python" - "$wheel" "${sdists[0]}" <<'EOF' || fail "package contents"
import sys, tarfile, zipfile

wheel = set(zipfile.ZipFile(sys.argv[1]).namelist())
for name in ("supportflow/__init__.py", "supportflow/py.typed", "supportflow/policy/__init__.py"):
    assert name in wheel, f"{name} missing from the wheel"
assert not any(n.startswith(("tests/", "docs/")) for n in wheel), "tests or docs in the wheel"
sdist = {n.split("/", 1)[1] for n in tarfile.open(sys.argv[2]).getnames() if "/" in n}
for name in ("pyproject.toml", "README.md", "LICENSE", "src/supportflow/__init__.py"):
    assert name in sdist, f"{name} missing from the sdist"
print(f"package-check: {len(wheel)} files in the wheel, {len(sdist)} in the sdist")
EOF

echo "package-check: installing $(basename "$wheel")[testing] into a clean virtualenv"
"$python" -m venv "$tmp/venv"
"$tmp/venv/bin/python" -m pip install --quiet "$wheel[testing]" ||
	fail "pip install of the wheel"

cd "$tmp" # outside the source tree: only the installed package can be imported
"$tmp/venv/bin/python" - <<'EOF' || fail "import from the clean virtualenv"
import pathlib, sys

import supportflow
import supportflow.testing  # the `testing` extra brought hypothesis

where = pathlib.Path(supportflow.__file__).resolve()
assert pathlib.Path(sys.prefix).resolve() in where.parents, f"imported from {where}"
EOF

echo "package-check: supportflow demo --days 3"
"$tmp/venv/bin/supportflow" demo --db "$tmp/demo.db" --days 3 >"$tmp/demo.log" 2>&1 ||
	{ cat "$tmp/demo.log" >&2; fail "supportflow demo"; }
[ -s "$tmp/demo.db" ] || fail "supportflow demo wrote no database"
tail -n 3 "$tmp/demo.log"

echo "package-check: the README's Python examples"
"$tmp/venv/bin/python" - "$root/README.md" "$tmp" <<'EOF' || fail "no README example"
import pathlib, re, sys

text = pathlib.Path(sys.argv[1]).read_text(encoding="utf-8")
blocks = re.findall(r"```python\n(.*?)```", text, re.S)
assert blocks, "README.md has no ```python block"
for number, block in enumerate(blocks, 1):
    pathlib.Path(sys.argv[2], f"readme_{number}.py").write_text(block, encoding="utf-8")
EOF
for example in "$tmp"/readme_*.py; do
	"$tmp/venv/bin/python" "$example" >/dev/null || fail "the README example $(basename "$example")"
done

echo "package-check: OK"
