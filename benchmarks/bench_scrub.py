"""Scrubbing: recall / false positives per category and events/s, flowtrace vs Pydantic
Logfire's scrubber vs Microsoft Presidio's pattern recognizers, on the same labeled events.

Two event sets: ``corpus.py`` (nested structured events, little free text) and
``corpus_freetext.py`` (flat 10-12-field events whose message carries emails, cards, JWTs
and ``key=value`` credentials among benign look-alikes). flowtrace *before* (the scrubbing
code of a git revision, default ``main``, loaded side by side) and *after* (this checkout)
are timed in the same interleaved rounds as Logfire, so the before/after and the
flowtrace/Logfire ratios come from one run.

Also times 1 MB adversarial strings through flowtrace (the linear-time claim) and the
google-re2 binding's per-call cost, which decided the regex engine (stdlib ``re``).

    python3 dev.py bench scrub            # baseline: main
    FLOWTRACE_BENCH_BASELINE=<rev> python3 dev.py bench scrub
"""

from __future__ import annotations

import importlib
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import timeit
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import corpus
import corpus_freetext

from flowtrace import Scrubber

N_EVENTS = 2000
N_PRESIDIO = 300  # Presidio is ~1000x slower; it gets the first N_PRESIDIO of the same events
ROUNDS = 7
ROOT = Path(__file__).resolve().parent.parent


# --- the three scrubbers, each a function event -> scrubbed event ----------------------------


def flowtrace_scrubber() -> Callable[[dict[str, Any]], Any]:
    scrubber = Scrubber()
    return scrubber.scrub


def baseline_scrubber(rev: str) -> Callable[[dict[str, Any]], Any] | None:
    """flowtrace's scrubber as of git revision ``rev``, imported as ``flowtrace_before``."""
    try:
        tar = subprocess.run(
            ["git", "archive", rev, "src/flowtrace"], cwd=ROOT, capture_output=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"baseline {rev!r} unavailable: {exc}")
        return None
    tmp = Path(tempfile.mkdtemp(prefix="flowtrace-before-"))
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        archive.extractall(tmp, filter="data")
    (tmp / "src" / "flowtrace").rename(tmp / "flowtrace_before")
    sys.path.insert(0, str(tmp))
    module = importlib.import_module("flowtrace_before.scrubbing")
    return module.Scrubber().scrub  # type: ignore[no-any-return]


def logfire_scrubber() -> Callable[[dict[str, Any]], Any]:
    # Logfire's own scrubber, called in isolation the way its span processor calls it on
    # span attributes (default patterns, no callback).
    from logfire._internal.scrubbing import Scrubber as LogfireScrubber

    scrubber = LogfireScrubber(None)
    return lambda event: scrubber.scrub_value(("attributes",), event)[0]


def presidio_scrubber() -> Callable[[dict[str, Any]], Any]:
    # No spaCy model is installable here: run Presidio's predefined *pattern* recognizers
    # directly (no NLP engine), on every string leaf, and replace what they find.
    import tldextract
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        EmailRecognizer,
        IbanRecognizer,
        IpRecognizer,
        PhoneRecognizer,
        UrlRecognizer,
        UsSsnRecognizer,
    )
    from presidio_analyzer.predefined_recognizers.generic import email_recognizer

    # Offline: the bundled public-suffix snapshot instead of a download.
    email_recognizer.tldextract = type(
        "T", (), {"extract": staticmethod(tldextract.TLDExtract(suffix_list_urls=()))}
    )
    recognizers = [
        EmailRecognizer(),
        CreditCardRecognizer(),
        IbanRecognizer(),
        IpRecognizer(),
        PhoneRecognizer(),
        UrlRecognizer(),
        UsSsnRecognizer(),
    ]

    def text(value: str) -> str:
        spans = []
        for rec in recognizers:
            spans += [
                (r.start, r.end, r.entity_type)
                for r in rec.analyze(value, rec.supported_entities, None)
            ]
        for start, end, entity in sorted(spans, reverse=True):
            value = value[:start] + f"<{entity}>" + value[end:]
        return value

    def walk(obj: Any) -> Any:
        if isinstance(obj, str):
            return text(obj)
        if isinstance(obj, int) and not isinstance(obj, bool):
            new = text(str(obj))
            return obj if new == str(obj) else new
        if isinstance(obj, dict):
            return {k: walk(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [walk(v) for v in obj]
        return obj

    return walk


# --- measurement ---------------------------------------------------------------------------


def accuracy(
    events: list[Any], scrub: Callable[[dict[str, Any]], Any], categories: tuple[str, ...]
) -> dict[str, Any]:
    """Recall per category (planted text absent from output) and FP rate on benign values."""
    found: Counter[str] = Counter()
    total: Counter[str] = Counter()
    missed: Counter[str] = Counter()
    fp = benign = 0
    for item in events:
        out = json.dumps(scrub(item.event), default=str, ensure_ascii=False)
        for category, kind, text in item.planted:
            total[category] += 1
            if text in out:
                missed[kind] += 1
            else:
                found[category] += 1
        for value in item.benign:
            benign += 1
            fp += value not in out
    return {
        "recall": {c: found[c] / total[c] for c in categories if total[c]},
        "fp_rate": fp / benign,
        "missed": dict(missed.most_common(6)),
    }


def throughput(
    events: list[Any], scrub: Callable[[dict[str, Any]], Any], repeat: int
) -> float:
    """Median events/s over ``repeat`` passes."""
    payload = [e.event for e in events]
    times = timeit.repeat(lambda: [scrub(e) for e in payload], number=1, repeat=repeat)
    return len(payload) / statistics.median(times)


def adversarial() -> None:
    scrubber = Scrubber(time_budget=30)
    cases = {
        '"a@" * 500k': "a@" * 500_000,
        "1 MB of digits": "1" * 1_000_000,
        '"4 " * 500k': "4 " * 500_000,
        "1 MB base64": "aB3/" * 250_000,
        '"+1 " * 333k': "+1 " * 333_333,
        '"1.1.1.1." * 125k': "1.1.1.1." * 125_000,
        '"password=" * 110k': "password=" * 110_000,
        '"4444 " * 200k': "4444 " * 200_000,
        "1 MB prose": "the quick brown fox jumps over the lazy dog " * 23_000,
    }
    print("\nadversarial 1 MB strings through flowtrace (median of 3, time budget lifted):")
    for name, value in cases.items():
        runs = timeit.repeat(lambda v=value: scrubber.scrub(v), number=1, repeat=3)
        print(f"  {name:22s} {statistics.median(runs):7.3f} s")
    default = Scrubber()
    start = time.perf_counter()
    out = default.scrub("4444 " * 200_000)
    print(
        f"  default 0.5 s budget on '4444 ' * 200k: {time.perf_counter() - start:.3f} s -> "
        f"{out[:20]!r} (fail closed)"
    )


def engine_choice() -> None:
    """Per-call cost of google-re2 vs stdlib re on a short log value (engine choice)."""
    import re

    short = "user logged in from web via the api gateway"
    pattern = r"[0-9][^0-9]{0,3}[0-9][^0-9]{0,3}[0-9]|@|=|eyJ|-----BEGIN"
    std = re.compile(pattern)
    t_std = statistics.median(timeit.repeat(lambda: std.search(short), number=20000, repeat=5))
    print("\nregex engine, one search on a 43-char value (median of 5 x 20k):")
    print(f"  stdlib re     {t_std / 20000 * 1e9:8.0f} ns")
    try:
        import re2  # type: ignore[import-not-found]
    except ImportError:
        print("  google-re2    not installed (pip install google-re2 to compare)")
        return
    fast = re2.compile(pattern)
    t_re2 = statistics.median(timeit.repeat(lambda: fast.search(short), number=20000, repeat=5))
    print(f"  google-re2    {t_re2 / 20000 * 1e9:8.0f} ns  ({t_re2 / t_std:.1f}x stdlib)")
    big = "x" * 1_000_000
    t1 = statistics.median(timeit.repeat(lambda: std.search(big), number=1, repeat=3))
    t2 = statistics.median(timeit.repeat(lambda: fast.search(big), number=1, repeat=3))
    print(f"  1 MB no-match: stdlib {t1 * 1e3:.1f} ms, re2 {t2 * 1e3:.1f} ms")


def compare(
    title: str,
    events: list[Any],
    categories: tuple[str, ...],
    tools: dict[str, Callable[[dict[str, Any]], Any]],
) -> None:
    """Accuracy of every tool, then interleaved throughput rounds (Presidio timed alone)."""
    print(f"\n== {title}: {len(events)} events ==")
    results: dict[str, dict[str, Any]] = {}
    for name, scrub in tools.items():
        subset = events[:N_PRESIDIO] if name == "presidio" else events
        results[name] = {**accuracy(subset, scrub, categories), "n": len(subset)}
    # The machine is shared: interleave the passes and keep medians and per-round ratios.
    timed = [n for n in tools if n != "presidio"]
    rounds: dict[str, list[float]] = {name: [] for name in timed}
    for _ in range(ROUNDS):
        for name in timed:
            rounds[name].append(throughput(events, tools[name], repeat=1))
    for name, values in rounds.items():
        results[name]["eps"] = statistics.median(values)
    results["presidio"]["eps"] = throughput(events[:N_PRESIDIO], tools["presidio"], repeat=3)
    header = " ".join(f"{c:>10s}" for c in categories)
    print(f"{'':10s} {'events':>7s} {header} {'FP rate':>8s} {'events/s':>10s}")
    for name, r in results.items():
        recalls = " ".join(f"{r['recall'].get(c, float('nan')):10.4f}" for c in categories)
        print(f"{name:10s} {r['n']:7d} {recalls} {r['fp_rate']:8.4f} {r['eps']:10.0f}")
    for name, r in results.items():
        if r["missed"]:
            print(f"  {name} most missed kinds: {r['missed']}")

    def ratio(a: str, b: str) -> None:
        per = [x / y for x, y in zip(rounds[a], rounds[b], strict=True)]
        print(
            f"{a} / {b} throughput: median of rounds {statistics.median(per):.2f}x "
            f"(rounds {min(per):.2f}-{max(per):.2f})"
        )

    ratio("flowtrace", "logfire")
    if "before" in rounds:
        ratio("flowtrace", "before")
    ft = results["flowtrace"]
    print(f"flowtrace / presidio throughput: {ft['eps'] / results['presidio']['eps']:.0f}x")
    ok_recall = all(v >= 0.995 for v in ft["recall"].values())
    print(
        f"targets: recall>=0.995 per category: {ok_recall}; FP<=0.005: "
        f"{ft['fp_rate'] <= 0.005}; >= logfire: {ft['eps'] >= results['logfire']['eps']}"
    )


def engine_multipattern() -> None:
    """One hyperscan pass (a multi-pattern engine) vs the pure-Python prefilter and gates,
    on the free-text messages: the measurement behind keeping stdlib ``re``."""
    from flowtrace.scrubbing import _prefilter as pf
    from flowtrace.scrubbing._scan import digit_count

    messages = [e.event["event"] for e in corpus_freetext.generate(N_EVENTS)]
    ascii_messages = [m for m in messages if m.isascii()]

    def ours() -> None:
        for m in ascii_messages:
            if pf.TRIGGER.search(m) is None and not pf.has_key_word(m):
                continue
            runs = pf.encoded_runs(m)
            pf.builtin_candidates(m, digit_count(m), pf.key_word_at(m), pf.aws_secret_at(runs))

    t_ours = statistics.median(timeit.repeat(ours, number=1, repeat=7)) / len(ascii_messages)
    print("\nprefilter + gates per free-text message (median of 7):")
    print(f"  stdlib re (flowtrace)   {t_ours * 1e6:6.2f} us")
    try:
        import hyperscan  # type: ignore[import-not-found]
    except ImportError:
        print("  hyperscan               not installed (pip install hyperscan to compare)")
        return
    patterns = [
        rb"[0-9](?:[ \-./_]?[0-9]){11}",
        rb"@",
        rb"passw|passphrase|pwd|secret|token|api[_\-.]?key|access[_\-.]?key|cookie|jwt",
        rb"eyJ",
        rb"[0-9]{3}[\- .][0-9]{2}[\- .][0-9]{4}",
        rb"[0-9]\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]",
        rb"[A-Za-z]{2}[0-9]{2}",
        rb"[A-Za-z0-9+/_\-]{16}",
        rb"\+[ (]?[0-9]|[0-9]{3}[ .\-)]{1,2}[0-9]{3}[ .\-][0-9]{4}|[2-9][0-9]{9}",
    ]
    db = hyperscan.Database()
    flags = [hyperscan.HS_FLAG_SINGLEMATCH | hyperscan.HS_FLAG_CASELESS] * len(patterns)
    db.compile(expressions=patterns, ids=list(range(len(patterns))), flags=flags)
    scratch_found: list[tuple[int, int]] = []

    def on_match(pid: int, start: int, end: int, flags: int, ctx: object) -> None:
        scratch_found.append((pid, end))

    encoded = [m.encode() for m in ascii_messages]

    def theirs() -> None:
        for m in encoded:
            scratch_found.clear()
            db.scan(m, match_event_handler=on_match)

    t_hs = statistics.median(timeit.repeat(theirs, number=1, repeat=7)) / len(encoded)
    print(f"  hyperscan, 9 patterns   {t_hs * 1e6:6.2f} us ({t_hs / t_ours:.2f}x)")


def main() -> None:
    print(f"machine: {platform.machine()}, Python {platform.python_version()}")
    with open("/proc/loadavg") as f:
        print(f"load: {f.read().strip()}")
    rev = os.environ.get("FLOWTRACE_BENCH_BASELINE", "main")
    tools: dict[str, Callable[[dict[str, Any]], Any]] = {"flowtrace": flowtrace_scrubber()}
    before = baseline_scrubber(rev)
    if before is not None:
        tools["before"] = before
        print(f"before = flowtrace scrubbing at {rev!r}")
    tools["logfire"] = logfire_scrubber()
    tools["presidio"] = presidio_scrubber()
    compare("structured corpus (corpus.py)", corpus.generate(N_EVENTS), corpus.CATEGORIES, tools)
    compare(
        "free-text corpus (corpus_freetext.py)",
        corpus_freetext.generate(N_EVENTS),
        corpus_freetext.CATEGORIES,
        tools,
    )
    if "--quick" in sys.argv:
        return
    adversarial()
    engine_choice()
    engine_multipattern()


if __name__ == "__main__":
    main()
