#!/bin/sh
# libnono must export exactly the nono_* symbols listed in libnono.sym.
# usage: check-symbols.sh LIBNONO.so LIBNONO.sym
set -eu
lib=$1 sym=$2
command -v nm >/dev/null || { echo "nm not found"; exit 77; }
exported=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' | sed 's/@.*//' | sort)
listed=$(sed -n 's/^[[:space:]]*\(nono_[a-z_0-9]*\);$/\1/p' "$sym" | sort)
bad=$(printf '%s\n' "$exported" | grep -v '^nono_' || true)
if [ -n "$bad" ]; then
	echo "exported symbols outside nono_*:"; echo "$bad"; exit 1
fi
if [ "$exported" != "$listed" ]; then
	echo "exported and listed symbols differ:"
	printf '%s\n' "$exported" > /tmp/.nono-exp.$$; printf '%s\n' "$listed" > /tmp/.nono-lst.$$
	diff /tmp/.nono-exp.$$ /tmp/.nono-lst.$$ || true
	rm -f /tmp/.nono-exp.$$ /tmp/.nono-lst.$$
	exit 1
fi
echo "ok: $(printf '%s\n' "$exported" | wc -l) symbols, all nono_*"
