#!/usr/bin/env python3
"""Replays the query scripts (*.tq) against a running InfluxDB 1.x and reports, query by
query, whether InfluxDB gives the rows the script expects. See README.md in this folder.

Usage: influxdb_check.py --url http://127.0.0.1:PORT [--verbose] [SCRIPT.tq ...]

Exit status 0 when every compared query agrees with its script, every `influxdb differs`
query really differs, and nothing else differs; 1 otherwise.
"""

import argparse
import datetime
import json
import math
import pathlib
import sys
import urllib.error
import urllib.parse
import urllib.request

PRECISIONS = {"": "n", "ns": "n", "u": "u", "ms": "ms", "s": "s"}


def request(url, method="GET", body=None):
    req = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            text = response.read().decode()
            return response.status, text
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def query(base, database, text):
    params = {"q": text, "epoch": "ns"}
    if database:
        params["db"] = database
    status, body = request(base + "/query?" + urllib.parse.urlencode(params), method="POST")
    try:
        return json.loads(body)
    except json.JSONDecodeError:
        return {"error": f"HTTP {status}: {body.strip()}"}


def format_time(ns):
    seconds, fraction = divmod(ns, 1_000_000_000)
    moment = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(seconds=seconds)
    out = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if fraction:
        out += "." + f"{fraction:09d}".rstrip("0")
    return out + "Z"


def format_value(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(value, ensure_ascii=False)


def render(answer):
    """InfluxDB's JSON answer printed the way scripts.rs prints Tally's results."""
    if "error" in answer and "results" not in answer:
        return ["parse error:", answer["error"]]
    results = answer.get("results", [])
    lines = []
    for result in results:
        if len(results) > 1:
            lines.append(f"statement {result.get('statement_id', 0)}")
        for message in result.get("messages", []) or []:
            lines.append(f"message: {message.get('text', message)}")
        if "error" in result:
            lines.append(f"error: {result['error']}")
            continue
        series = result.get("series", [])
        if not series:
            lines.append("(no series)")
        for s in series:
            lines.append(f"name: {s.get('name') or '(none)'}")
            tags = s.get("tags") or {}
            if tags:
                lines.append("tags: " + ", ".join(f"{k}={v}" for k, v in sorted(tags.items())))
            columns = s.get("columns", [])
            lines.append("  ".join(columns))
            for row in s.get("values", []):
                cells = []
                for column, value in zip(columns, row):
                    if column == "time" and isinstance(value, int):
                        cells.append(format_time(value))
                    else:
                        cells.append(format_value(value))
                lines.append("  ".join(cells))
    return lines


def tokens(line):
    out, i = [], 0
    while i < len(line):
        if line[i].isspace():
            i += 1
            continue
        start = i
        if line[i] == '"':
            i += 1
            while i < len(line):
                if line[i] == "\\":
                    i += 2
                    continue
                if line[i] == '"':
                    i += 1
                    break
                i += 1
        else:
            while i < len(line) and not line[i].isspace():
                i += 1
        out.append(line[start:i])
    return out


def number(token):
    text = token[:-1] if token.endswith("u") else token
    if text in ("NaN", "inf", "-inf"):
        return float(text)
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return None


def same_token(expected, got):
    if expected == got:
        return True
    a, b = number(expected), number(got)
    if a is None or b is None:
        return False
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    return float(a) == float(b)


def same_lines(expected, got):
    if expected and got and expected[0].startswith("parse error:") and got[0].startswith("parse error:"):
        return True
    if len(expected) != len(got):
        return False
    for e, g in zip(expected, got):
        if e.startswith("error:") and g.startswith("error:"):
            continue
        te, tg = tokens(e), tokens(g)
        if len(te) != len(tg) or not all(same_token(x, y) for x, y in zip(te, tg)):
            return False
    return True


def block(lines, start):
    end = start
    while end < len(lines) and lines[end].strip():
        end += 1
    return end


def check_script(base, path, verbose):
    lines = path.read_text().splitlines()
    status, body = request(base + "/query?" + urllib.parse.urlencode({"q": "SHOW DATABASES"}), method="POST")
    for series in json.loads(body)["results"][0].get("series", []):
        for (name,) in series.get("values", []):
            query(base, None, f'DROP DATABASE "{name}"')
    database = "db"
    note = None
    counts = {"agree": 0, "differ as noted": 0, "skipped": 0, "FAIL": 0}
    i = 0
    while i < len(lines):
        line = lines[i].rstrip()
        word, _, rest = line.partition(" ")
        number_ = i + 1
        if word == "influxdb":
            note = rest
        elif word == "database":
            database = rest.strip()
        elif word == "create":
            query(base, None, f'CREATE DATABASE "{rest.strip()}"')
        elif word == "load":
            end = block(lines, i + 1)
            query(base, None, f'CREATE DATABASE "{database}"')
            body = ("\n".join(lines[i + 1:end]) + "\n").encode()
            precision = PRECISIONS[rest.strip()]
            params = urllib.parse.urlencode({"db": database, "precision": precision})
            status, text = request(base + "/write?" + params, method="POST", body=body)
            if status != 204:
                print(f"{path.name}:{number_}: write failed: {status} {text.strip()}")
            i = end
            continue
        elif word == "query":
            end = block(lines, i + 1)
            expected = lines[i + 1:end]
            if note and note.startswith("lacks"):
                # Not even sent: such a query may use settings InfluxDB cannot take.
                counts["skipped"] += 1
                if verbose:
                    print(f"{path.name}:{number_}: skipped: {rest}\n  note: influxdb {note}")
                note = None
                i = end
                continue
            got = render(query(base, database, rest))
            agrees = same_lines(expected, got)
            if note and note.startswith("differs"):
                outcome = "differ as noted" if not agrees else "FAIL"
                if agrees:
                    note += " (but InfluxDB agrees: drop the note)"
            else:
                outcome = "agree" if agrees else "FAIL"
            counts[outcome] += 1
            if outcome == "FAIL" or verbose or (outcome == "differ as noted" and verbose):
                print(f"{path.name}:{number_}: {outcome}: {rest}")
                if note:
                    print(f"  note: influxdb {note}")
                if outcome != "agree" or verbose:
                    print("  expected:\n    " + "\n    ".join(expected))
                    print("  influxdb:\n    " + "\n    ".join(got))
            note = None
            i = end
            continue
        i += 1
    return counts


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="InfluxDB's HTTP address, e.g. http://127.0.0.1:47186")
    parser.add_argument("--verbose", action="store_true", help="print every query, not only failures")
    parser.add_argument("scripts", nargs="*", type=pathlib.Path)
    args = parser.parse_args()
    scripts = args.scripts or sorted(pathlib.Path(__file__).parent.glob("*.tq"))
    total = {"agree": 0, "differ as noted": 0, "skipped": 0, "FAIL": 0}
    for path in scripts:
        counts = check_script(args.url.rstrip("/"), path, args.verbose)
        for key, value in counts.items():
            total[key] += value
    print(", ".join(f"{key}: {value}" for key, value in total.items()))
    return 1 if total["FAIL"] else 0


if __name__ == "__main__":
    sys.exit(main())
