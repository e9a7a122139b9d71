#!/bin/sh
# Applies the Debian patch series of a source tree (debian/patches/series) in order with plain
# patch(1), skipping the patches named after the tree; records what it did in .labrig-patched.
# Usage: apply-debian-patches.sh SOURCE_TREE [SKIPPED_PATCH...]
set -eu
tree=$1
shift
cd "$tree"
[ -f debian/patches/series ] || { echo "no debian/patches/series in $tree" >&2; exit 1; }
: >.labrig-patched.tmp
sed -e 's/#.*//' -e '/^[[:space:]]*$/d' debian/patches/series | while read -r name _; do
  skip=no
  for skipped in "$@"; do [ "$skipped" = "$name" ] && skip=yes; done
  if [ "$skip" = yes ]; then
    echo "skipped $name" >>.labrig-patched.tmp
    continue
  fi
  patch -p1 --forward --batch --silent <"debian/patches/$name" ||
    { echo "debian/patches/$name does not apply" >&2; exit 1; }
  echo "applied $name" >>.labrig-patched.tmp
done
# Debian builds pyexpat into the interpreter (its Modules/Setup), so its backport of the
# CVE-2026-4224 fix includes a core header in pyexpat.c without saying the file is part of the
# core; built as a shared module here, it needs what upstream's own later pyexpat.c says first.
if grep -q '^#include "pycore_' Modules/pyexpat.c && ! grep -q Py_BUILD_CORE_MODULE Modules/pyexpat.c; then
  sed -i '1i #ifndef Py_BUILD_CORE_BUILTIN\n#  define Py_BUILD_CORE_MODULE 1\n#endif' Modules/pyexpat.c
  echo "labrig: Modules/pyexpat.c built as a core module" >>.labrig-patched.tmp
fi
mv .labrig-patched.tmp .labrig-patched
