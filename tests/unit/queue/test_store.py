import os
import threading

from tdm_dagster.files.atomic import atomic_open, atomic_write_jsonl
from tdm_dagster.queue.store import TrainingQueue, count_lines


def test_enqueue_lands_in_priority_folder_and_depth_counts(home):
    queue = TrainingQueue(home)
    path, written = queue.enqueue("syllo_autogen_20251122_130000_count2", [{"a": 1}, {"a": 2}], "high")
    assert path == home.queue_dir("high") / "syllo_autogen_20251122_130000_count2.jsonl"
    assert written == 2 and count_lines(path) == 2
    queue.enqueue("b", [{"a": 3}], "low")
    assert queue.depth() == {"high": 1, "normal": 0, "low": 1}
    assert [f.priority for f in queue.files()] == ["high", "low"]


def test_requeue_moves_instead_of_duplicating(home):
    queue = TrainingQueue(home)
    queue.enqueue("b", [{"a": 1}], "low")
    queue.enqueue("b", [{"a": 1}, {"a": 2}], "high")
    assert queue.depth() == {"high": 1, "normal": 0, "low": 0}


def test_failed_write_leaves_no_file_and_no_temp(home):
    target = home.queue_dir("normal") / "x.jsonl"

    def records():
        yield {"ok": 1}
        raise RuntimeError("generator died")

    try:
        atomic_write_jsonl(target, records())
    except RuntimeError:
        pass
    assert not target.exists()
    assert os.listdir(home.queue_dir("normal")) == []


def test_reader_never_sees_a_partial_file(home):
    """A reader polling the folder while a large file is written sees nothing, then the whole file."""
    folder = home.queue_dir("normal")
    rows = [{"i": i, "text": "x" * 200} for i in range(20000)]
    seen_sizes = []
    done = threading.Event()

    def watch():
        while not done.is_set():
            for path in folder.glob("*.jsonl"):
                seen_sizes.append(count_lines(path))

    watcher = threading.Thread(target=watch)
    watcher.start()
    TrainingQueue(home).enqueue("big", rows, "normal")
    done.set()
    watcher.join()
    assert all(size == len(rows) for size in seen_sizes)


def test_temp_files_are_invisible_to_queue_listing(home):
    folder = home.queue_dir("normal")
    with atomic_open(folder / "pending.jsonl") as handle:
        handle.write("{}\n")
        assert TrainingQueue(home).total_depth() == 0
    assert TrainingQueue(home).total_depth() == 1
