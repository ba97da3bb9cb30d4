#!/usr/bin/env bash
# Run here, on the Debian 12 development machine: downloads into .gpu-deps/ the Debian
# packages that scripts/gpu_check.sh unpacks on a GPU machine, which has CUDA, a CUDA
# Python torch, CMake and ninja but none of SlimTrain's other dependencies (docs/design.md,
# "The GPU check"). They are the -dev packages, and the shared libraries they need that a
# base system with Python lacks; about 45 MB. Idempotent: a package already
# downloaded is kept, and one no longer listed is removed.
set -euo pipefail
cd "$(dirname "$0")/.."

# Headers, CMake files and link-time libraries of SlimTrain's dependencies, and pkgconf.
development=(libopenmpi-dev libyaml-cpp-dev libhdf5-dev libboost1.74-dev libcli11-dev
             libfmt-dev libcairo2-dev libgtest-dev nlohmann-json3-dev libonnx-dev
             libprotobuf-dev zlib1g-dev libonnxifi libexpat1-dev pkgconf-bin libpkgconf3)
# Their run-time libraries, and mpirun.
runtime=(libopenmpi3 openmpi-bin libyaml-cpp0.7 libhdf5-103-1 libfmt9 libcairo2 libonnx1
         libprotobuf32 zlib1g libexpat1)
# Left out of the closure: what a base system with Python has (the C and C++ runtimes,
# compression, TLS, ncurses, ...), package tools, and fonts.
base='^(fonts-|ttf-|xfonts-|fontconfig-config$|libc6$|libc-bin$|libgcc-s1$|libstdc\+\+6$|'
base+='gcc-12-base$|dpkg$|tar$|passwd$|login$|adduser$|debconf$|cdebconf$|perl|libperl|'
base+='install-info$|openssh-client$|libpam|sensible-utils$|lsb-base$|libdebconfclient0$|'
base+='libtextwrap1$|libnewt0.52$|libslang2$|readline-common$|sysvinit-utils$|'
base+='libdebian-installer4$|liblzma5$|libbz2-1.0$|libzstd1$|libselinux1$|'
base+='libpcre2-8-0$|libacl1$|libattr1$|libmd0$|libcrypt1$|libaudit|libcap-ng0$|libcap2$|'
base+='libtinfo6$|libncursesw6$|libncurses6$|libgmp10$|libffi8$|libuuid1$|libblkid1$|'
base+='libmount1$|libsystemd0$|libudev1$|libdb5.3$|libsemanage|libsepol2$|libgcrypt20$|'
base+='libgpg-error0$|liblz4-1$|libxxhash0$|libseccomp2$|libp11-kit0$|libtasn1-6$|'
base+='libgnutls30$|libhogweed6$|libnettle8$|libunistring2$|libidn2-0$|libssl3$|'
base+='libsqlite3-0$|libreadline8$|libsmartcols1$|libbsd0$|libedit2$|libtirpc|libnsl2$)'

closure=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
            --no-breaks --no-replaces --no-enhances --no-pre-depends "${runtime[@]}" |
          grep -v -e '^ ' -e '^<' | grep -v -E "$base" | sort -u)
mkdir -p .gpu-deps
cd .gpu-deps
wanted=("${development[@]}" $closure)
for file in ./*.deb; do
  [[ -e $file ]] || continue
  package=$(basename "$file"); package=${package%%_*}
  [[ " ${wanted[*]} " == *" $package "* ]] || rm "$file"
done
for package in "${wanted[@]}"; do
  if ! compgen -G "${package}_*.deb" >/dev/null; then apt-get download -q "$package"; fi
done
echo "$(ls ./*.deb | wc -l) packages, $(du -sh . | cut -f1) in .gpu-deps/"
