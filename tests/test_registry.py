"""fedsparse.registry: lookups from several threads while the package is still loading."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

from fedsparse.registry import Registry


def test_a_lookup_from_another_thread_waits_until_every_entry_is_in(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    package = tmp_path / "slow_entries"
    package.mkdir()
    (package / "__init__.py").write_text(
        "from fedsparse.registry import Registry\nENTRIES = Registry('thing', package='slow_entries')\n"
    )
    (package / "slow.py").write_text(
        "import time\nfrom slow_entries import ENTRIES\ntime.sleep(0.5)\nENTRIES.add('slow', 1)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "slow_entries", raising=False)
    from slow_entries import ENTRIES  # type: ignore[import-not-found]

    assert isinstance(ENTRIES, Registry)
    first = threading.Thread(target=ENTRIES.get, args=("slow",))
    first.start()
    time.sleep(0.1)  # the first thread is importing slow.py now
    assert ENTRIES.get("slow") == 1
    first.join()
