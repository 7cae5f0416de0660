"""Tests of RunLock: one process per run folder, stale locks of killed processes taken over."""

import errno
import json
import os
import socket
import subprocess
import sys
import tempfile
import unittest
from unittest import mock

from absl import logging

from tf_atalp import run_lock
from tf_atalp.run_lock import FolderInUseError, LockHolder, RunLock

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOLD = ("import sys, time\n"
        "from tf_atalp.run_lock import RunLock\n"
        "with RunLock(sys.argv[1], name='model_dir'):\n"
        "    print('locked', flush=True)\n"
        "    time.sleep(60)\n")


def ended_pid() -> int:
    """The pid of a process that has ended."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def write_holder(folder, pid, host=None):
    os.makedirs(folder, exist_ok=True)
    holder = LockHolder(pid, host or socket.gethostname(), "2026-01-02 03:04:05 UTC",
                        "train_main.py --model_dir=x")
    with open(os.path.join(folder, "run.lock"), "w") as f:
        f.write(holder.to_text())


class RunLockTest(unittest.TestCase):

    def setUp(self):
        self.folder = os.path.join(tempfile.mkdtemp(), "run")

    def test_holds_the_lock_with_its_holder_and_removes_it_after(self):
        with RunLock(self.folder) as lock:
            with open(lock.path) as f:
                holder = LockHolder.parse(f.read())
            self.assertEqual(holder.pid, os.getpid())
            self.assertEqual(holder.host, socket.gethostname())
            self.assertRegex(holder.since_utc, r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$")
            self.assertIsNone(lock.took_over)
        self.assertEqual(os.listdir(self.folder), [])
        with RunLock(self.folder):  # free again
            pass

    def test_a_second_holder_is_refused_in_one_line_naming_the_first(self):
        with RunLock(self.folder):
            with self.assertRaises(FolderInUseError) as caught:
                with RunLock(self.folder, name="model_dir"):
                    self.fail("two holders")
        message = str(caught.exception)
        self.assertNotIn("\n", message)
        self.assertIn(f"`model_dir` {self.folder!r} is in use by process {os.getpid()} on host "
                      f"{socket.gethostname()} (since ", message)
        self.assertIn(os.path.join(self.folder, "run.lock"), message)

    def test_another_process_holding_it_is_refused_and_it_ends_free(self):
        holder = subprocess.Popen([sys.executable, "-c", HOLD, self.folder], cwd=ROOT,
                                  stdout=subprocess.PIPE, text=True,
                                  env=dict(os.environ, PYTHONPATH=ROOT))
        try:
            self.assertEqual(holder.stdout.readline().strip(), "locked")
            with self.assertRaisesRegex(FolderInUseError, f"in use by process {holder.pid} "):
                RunLock(self.folder).__enter__()
        finally:
            holder.kill()  # SIGKILL: no cleanup ran, its lock file stays
            holder.wait()
        with RunLock(self.folder) as lock:
            self.assertEqual(lock.took_over.pid, holder.pid)

    def test_a_stale_lock_is_taken_over_with_a_warning(self):
        pid = ended_pid()
        write_holder(self.folder, pid)
        with self.assertLogs(logging.get_absl_logger(), "WARNING") as logs:
            with RunLock(self.folder) as lock:
                self.assertEqual(lock.took_over.pid, pid)
        self.assertIn(f"Took over the stale lock {lock.path} of process {pid} on host", logs.output[0])

    def test_without_flock_a_live_pid_or_another_host_is_refused_and_a_gone_one_taken_over(self):
        no_flock = OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))
        with mock.patch.object(run_lock.fcntl, "flock", side_effect=no_flock):
            live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
            try:
                write_holder(self.folder, live.pid)
                with self.assertRaisesRegex(FolderInUseError, f"process {live.pid} "):
                    RunLock(self.folder).__enter__()
            finally:
                live.kill()
                live.wait()
            write_holder(self.folder, 1, host="another-host.example")
            with self.assertRaisesRegex(FolderInUseError, "on host another-host.example"):
                RunLock(self.folder).__enter__()
            write_holder(self.folder, ended_pid())
            with RunLock(self.folder) as lock:
                self.assertIsNotNone(lock.took_over)

    def test_an_unreadable_lock_file_is_just_taken(self):
        os.makedirs(self.folder)
        with open(os.path.join(self.folder, "run.lock"), "w") as f:
            f.write("{not json")
        with RunLock(self.folder) as lock:
            self.assertIsNone(lock.took_over)
            with open(lock.path) as f:
                self.assertEqual(json.load(f)["pid"], os.getpid())


if __name__ == "__main__":
    unittest.main()
