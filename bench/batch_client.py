# Times POST /v1/predict/batch with 8 JPEGs from IMAGES_DIR: N requests per
# client, for each client count, each after 3 warm-up requests.
#   batch_client.py PORT IMAGES_DIR [N] [CLIENTS,...]
import glob, http.client, json, statistics, sys, threading, time, uuid

port, folder = int(sys.argv[1]), sys.argv[2]
n = int(sys.argv[3]) if len(sys.argv) > 3 else 30
counts = [int(c) for c in (sys.argv[4] if len(sys.argv) > 4 else "1,2").split(",")]
files = sorted(glob.glob(folder + "/**/*.jpg", recursive=True))[:8]
boundary = uuid.uuid4().hex
parts = []
for i, f in enumerate(files):
    with open(f, "rb") as fh:
        parts.append(b"--%s\r\nContent-Disposition: form-data; name=\"files\"; "
                     b"filename=\"%d.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n%s\r\n"
                     % (boundary.encode(), i, fh.read()))
body = b"".join(parts) + b"--%s--\r\n" % boundary.encode()
headers = {"Content-Type": "multipart/form-data; boundary=" + boundary}


def run(requests, latencies, sizes):
    conn = http.client.HTTPConnection("127.0.0.1", port)
    for _ in range(requests):
        start = time.perf_counter()
        conn.request("POST", "/v1/predict/batch", body, headers)
        resp = conn.getresponse()
        data = resp.read()
        latencies.append((time.perf_counter() - start) * 1000)
        answer = json.loads(data)
        assert resp.status == 200 and answer["failed"] == 0, data[:300]
        sizes.extend(r["timings_ms"]["batch_size"] for r in answer["results"])


for clients in counts:
    latencies, sizes = [], []
    run(3, [], [])
    start = time.perf_counter()
    threads = [threading.Thread(target=run, args=(n, latencies, sizes)) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    latencies.sort()
    print(f"clients {clients}: {len(latencies)} requests of {len(files)}, "
          f"median {statistics.median(latencies):.1f} ms, "
          f"p90 {latencies[int(0.9 * len(latencies))]:.1f} ms, "
          f"{len(files) * len(latencies) / elapsed:.1f} images/s, "
          f"mean batch size seen {statistics.mean(sizes):.2f}")
