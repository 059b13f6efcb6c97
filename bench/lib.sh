# Helpers for benchmarks: machine description and replacing one section of docs/benchmarks.md
# between <!-- bench:NAME --> markers (other sections are left as they are).
machine() {
	echo "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem:/{print $2}') GiB, kernel $(uname -r)"
}

# bench_section NAME FILE: puts the contents of FILE into docs/benchmarks.md as section NAME.
bench_section() {
	local name=$1 file=$2 doc
	doc="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/docs/benchmarks.md"
	[ -f "$doc" ] || printf '# Benchmarks\n\nEach section is written by the benchmark named in it; figures are ratios against a baseline measured in the same run, because the machines are shared and noisy.\n' >"$doc"
	python3 - "$doc" "$name" "$file" <<'PY'
import sys, re
doc, name, f = sys.argv[1:]
text = open(doc).read()
body = open(f).read().rstrip() + "\n"
block = f"<!-- bench:{name} -->\n{body}<!-- /bench:{name} -->\n"
pat = re.compile(rf"<!-- bench:{re.escape(name)} -->.*?<!-- /bench:{re.escape(name)} -->\n", re.S)
text = pat.sub(lambda m: block, text) if pat.search(text) else text.rstrip() + "\n\n" + block
open(doc, "w").write(text)
PY
}
