#!/usr/bin/env python3
"""Posts every case of malformed.json to a real InfluxDB 1.x and says whether it stored the bad line.

Not run by the test suite: it needs a running influxd. Start a throwaway one (Debian package
`influxdb`), for example:

    mkdir -p /tmp/influx && influxd config > /tmp/influx/influxdb.conf
    # edit: every /var/lib/influxdb path to /tmp/influx/data, bind-address values to free
    # 127.0.0.1 ports, reporting-disabled = true
    influxd run -config /tmp/influx/influxdb.conf &
    python3 ingest/tests/data/influxdb_crosscheck.py --url http://127.0.0.1:18086

Each case is written to its own fresh database with POST /write and read back with /query.
"REJECTED" means InfluxDB stored nothing but the valid lines; "ACCEPTED" lists the measurements it
stored besides `valid`. Every ACCEPTED case must be one of the deliberate differences listed in
docs/line-protocol.md. Standard library only.
"""

import argparse
import json
import pathlib
import random
import urllib.error
import urllib.parse
import urllib.request


def post(url, data):
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data)) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8086")
    args = parser.parse_args()
    cases = json.loads((pathlib.Path(__file__).parent / "malformed.json").read_text())
    accepted = 0
    for case in cases:
        body = bytes.fromhex(case["body_hex"]) if "body_hex" in case else case["body"].encode()
        db = "crosscheck_%d" % random.randrange(1 << 30)
        post(args.url + "/query", urllib.parse.urlencode({"q": 'CREATE DATABASE "%s"' % db}).encode())
        precision = "&precision=" + case["precision"] if "precision" in case else ""
        status, message = post(args.url + "/write?db=" + db + precision, body)
        query = urllib.parse.urlencode({"db": db, "q": "SELECT count(*) FROM /.*/"})
        with urllib.request.urlopen(args.url + "/query?" + query) as response:
            result = json.load(response)
        names = [s["name"] for r in result["results"] for s in r.get("series", [])]
        stored_bad = [name for name in names if name != "valid"]
        if status != 204 and not stored_bad:
            print("%-58s REJECTED %s" % (case["name"], message.strip()[:100]))
        else:
            accepted += 1
            print("%-58s ACCEPTED %s" % (case["name"], stored_bad))
        post(args.url + "/query", urllib.parse.urlencode({"q": 'DROP DATABASE "%s"' % db}).encode())
    print("%d of %d cases accepted by InfluxDB" % (accepted, len(cases)))


if __name__ == "__main__":
    main()
