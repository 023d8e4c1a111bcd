#!/usr/bin/env bash
# bench/people/fetch_johns.sh: real labelled face photos for bench/people/labelled.sh.
#
# dlib's source (Debian bookworm's dlib 19.24+dfsg-1, orig tarball, Boost licence) ships
# examples/johns/: 5 people, 11 different photos of each (150x150 aligned face chips of
# John_Salley, John_Savage, John_Schneider, John_Shimkus, John_Simm, one folder per person: the
# folder name is the label, as dlib's dnn_metric_learning_on_images_ex.cpp uses them), and
# examples/faces/: 12 photos: bald_guys.jpg (a collage of 4 actors x 6 photos, labelled by
# bench/people/bald_guys.labels) and 11 others (PASCAL VOC group photos, Tom_Cruise_avp_2014_4.jpg,
# dogs.jpg) whose faces serve as distractors.
#
# Only the 8.6 MB orig tarball is fetched (not the 200 MB models tarball that `apt-get source`
# would also fetch), with apt's own downloader, from the Debian mirror this machine's apt
# sources name, and checked against the SHA-256 that bookworm's Sources index gives for it.
# The images are not committed: they land under DEST (default data/people, git-ignored).
#
#   bench/people/fetch_johns.sh [DEST]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dest=${1:-$root/data/people}
file=dlib_19.24+dfsg.orig.tar.bz2
sha=66b4263822a2ff91a3e769e501c7d7927a13089e178c1427ec19cb0475823cf6
top=dlib-19.24+dfsg/examples

if [ -d "$dest/johns/John_Simm" ] && [ -d "$dest/faces" ]; then
  echo "fetch_johns: already in $dest"
  exit 0
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vdjohns.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp" # apt's downloader drops to the _apt user
got=
for repo in $(apt-get indextargets --format '$(REPO_URI)' | sort -u); do
  case $repo in *security*) continue ;; esac
  if /usr/lib/apt/apt-helper download-file "${repo}pool/main/d/dlib/$file" "$tmp/$file" \
    "SHA256:$sha" >/dev/null 2>&1; then
    got=1
    break
  fi
done
[ -n "$got" ] || {
  echo "fetch_johns: could not fetch $file (SHA-256 $sha) from the apt sources" >&2
  exit 1
}
tar -xjf "$tmp/$file" -C "$tmp" "$top/johns" "$top/faces"
mkdir -p "$dest"
rm -rf "$dest/johns" "$dest/faces"
mv "$tmp/$top/johns" "$dest/johns"
mkdir -p "$dest/faces"
mv "$tmp/$top/faces/"*.jpg "$dest/faces/"
echo "fetch_johns: $(ls "$dest"/johns | wc -l) people, $(ls "$dest"/johns/*/*.jpg | wc -l) photos" \
  "in $dest/johns; $(ls "$dest"/faces/*.jpg | wc -l) photos (bald_guys.jpg and distractors) in $dest/faces"
