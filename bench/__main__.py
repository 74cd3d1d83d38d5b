"""python -m bench: every benchmark in order, markdown on stdout."""

import os
import platform
import sys
import time

MODULES = [
    "list_page",
    "pages",
    "accept",
    "delivery",
    "api_http",
    "smtp",
    "templates",
    "deliverability",
    "webhooks",
    "tracking",
    "soak",  # last: BENCH_SOAK_SECONDS (600) of steady load
]


def main() -> int:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://", "pgsql://")):
        print(
            "The benchmarks need PostgreSQL: set DATABASE_URL=postgres://... (a database they may wipe).",
            file=sys.stderr,
        )
        return 1
    from bench import common

    common.setup()
    only = sys.argv[1:] or MODULES
    print("# Benchmarks\n")
    print(
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"{common.memory_gib():.0f} GiB RAM, PostgreSQL {common.server_version()}.\n"
    )
    started = time.monotonic()
    for name in only:
        module = __import__(f"bench.{name}", fromlist=["main"])
        t0 = time.monotonic()
        module.main()
        common.progress(f"{name} done in {time.monotonic() - t0:.0f} s")
        sys.stdout.flush()
    if common.AIMS:
        print("## Every aim beside its measure\n")
        print(common.aims_table())
    print(f"\n_All benchmarks: {time.monotonic() - started:.0f} s._")
    return 0


if __name__ == "__main__":
    sys.exit(main())
