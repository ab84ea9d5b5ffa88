#!/usr/bin/env bash
# Real HTTP clients against every lab that serves files: curl, wget -c (resume by Range), ab -k and
# h2load each fetch the same 5 MiB file of random bytes, and every byte is checked (sha256 for
# curl and wget; for ab and h2load, which keep no body, every response 2xx and bytes = requests ×
# size). Prints a transcript; exits 1 if any check failed.
#
#   bench/files/real-clients.sh [FIRST_PORT]      (default 18650; one port per lab and copy)
#
# Needs curl, wget, ab (apache2-utils) and h2load (nghttp2-client); run `make build` first.
set -uo pipefail
cd "$(dirname "$0")/../.."
port=${1:-18650}
work=$(mktemp -d)
trap 'kill "$server" 2>/dev/null; rm -rf "$work"' EXIT
mkdir -p "$work/root"
head -c $((5 * 1024 * 1024)) /dev/urandom > "$work/root/file.bin"
size=$(stat -c %s "$work/root/file.bin")
want=$(sha256sum < "$work/root/file.bin" | cut -d' ' -f1)
echo "file.bin: $size bytes, sha256 $want"
failed=0
check() { # name, condition result (0 = pass)
  if [ "$2" -eq 0 ]; then echo "  ok    $1"; else echo "  FAIL  $1"; failed=1; fi
}

# Each lab (its first variant) and, for labs with --copy, each copy: from the registry.
mapfile -t targets < <(node --input-type=module -e "
  import { LABS } from './dist/labs/index.js';
  for (const lab of LABS.filter((l) => l.protocols.includes('files')))
    for (const copy of lab.fileCopies ?? [{ name: '', args: [] }])
      console.log([lab.id, copy.name, [...lab.variants[0].args, ...copy.args].join(' ')].join('|'));
")

for line in "${targets[@]}"; do
  IFS='|' read -r id copy args <<< "$line"
  echo
  echo "== $id${copy:+ ($copy)}: node dist/labs/$id/main.js --port $port --protocol files --root ROOT --quiet $args"
  node "dist/labs/$id/main.js" --port "$port" --protocol files --root "$work/root" --quiet $args > "$work/server.log" 2>&1 &
  server=$!
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
  url="http://127.0.0.1:$port/file.bin"

  echo "\$ curl -sS -o out $url"
  curl -sS -o "$work/curl.out" -w '  HTTP %{http_code}, %{size_download} bytes, %{speed_download} B/s\n' "$url"
  got=$(sha256sum < "$work/curl.out" | cut -d' ' -f1)
  check "curl sha256 $got" "$([ "$got" = "$want" ]; echo $?)"

  echo "\$ wget -c $url   (1,000,000 bytes already there)"
  mkdir -p "$work/wget" && rm -f "$work/wget/file.bin"
  head -c 1000000 "$work/root/file.bin" > "$work/wget/file.bin"
  (cd "$work/wget" && wget -c --no-verbose --server-response "$url" 2>&1 | grep -E 'HTTP/1.1|Content-Range|Content-Length|->' | sed 's/^ */  /')
  got=$(sha256sum < "$work/wget/file.bin" | cut -d' ' -f1)
  check "wget -c resumed with 206, sha256 $got" "$([ "$got" = "$want" ]; echo $?)"

  # Lab 01 serves one connection at a time: one connection for the clients that keep theirs.
  conns=4; [ "$id" = 01-serial ] && conns=1
  echo "\$ ab -k -n 40 -c $conns $url"
  ab -k -n 40 -c "$conns" "$url" > "$work/ab.out" 2>&1
  grep -E 'Complete requests|Failed requests|Non-2xx|Keep-Alive requests|Total transferred|HTML transferred|Transfer rate' "$work/ab.out" | sed 's/^/  /'
  body=$(awk '/HTML transferred/ {print $3}' "$work/ab.out")
  check "ab: 40 complete, 0 failed, body bytes $body = 40 × $size" \
    "$(grep -qE 'Complete requests: +40$' "$work/ab.out" && grep -qE 'Failed requests: +0$' "$work/ab.out" && ! grep -q Non-2xx "$work/ab.out" && [ "$body" = $((40 * size)) ]; echo $?)"

  echo "\$ h2load --h1 -n 40 -c $conns $url"
  h2load --h1 -n 40 -c "$conns" "$url" > "$work/h2load.out" 2>&1
  grep -E '^requests:|^status codes:|^traffic:|^finished in' "$work/h2load.out" | sed 's/^/  /'
  check "h2load: 40 succeeded, 40 × 2xx" \
    "$(grep -qE '^requests: 40 total, 40 started, 40 done, 40 succeeded, 0 failed, 0 errored' "$work/h2load.out" && grep -qE '^status codes: 40 2xx' "$work/h2load.out"; echo $?)"

  kill "$server"; wait "$server" 2>/dev/null
  port=$((port + 1))
done
echo
[ "$failed" -eq 0 ] && echo "every client got every byte from every lab" || echo "SOME CHECKS FAILED"
exit "$failed"
