"""The pool config and the lease itself, in one process (the xdist runs are tests/test_pool_xdist.py).

Two WorkerLease objects in one process stand for two workers: each FileLock opens its own file, and
flock excludes open files, not processes, so the second lease cannot take what the first holds.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.pool import PoolExhausted, WorkerLease, lease_history, out_of_pool, worker_index
from harness.scenario.errors import ScenarioErrors
from harness.sharding import Shard, parse_shard, shard_of
from harness.target.base import TargetError
from harness.target.pool_config import PoolConfig
from harness.target_config import load_any_target_config
from harness.targets import TargetFactory

VM = """\
  - name: {name}
    host: {name}.example.test
    winrm: {{username: lkdh-admin, password: {{env: LKDH_WINRM_PASSWORD}}}}
    driver: {{package: build/LkdhTestDriver, hardware_id: 'Root\\LkdhTestDriver', lkdctl: build/lkdctl.exe}}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pool.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_pool_of_vms_loads_with_each_member_a_full_target_config(tmp_path: Path) -> None:
    config = load_any_target_config(
        write(tmp_path, "pool:\n" + VM.format(name="win-a") + VM.format(name="win-b"))
    )
    assert isinstance(config, PoolConfig)
    assert config.names == ["win-a", "win-b"] and config.target_name == "vm"
    assert config.member("win-b").driver.package == tmp_path / "build" / "LkdhTestDriver"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("pool: []\n", "pool.yaml:1:7: pool: expected a list of at least 1 item, found an empty list"),
        (
            "pool:\n" + VM.format(name="win-a") + VM.format(name="win-a"),
            "pool.yaml:2:3: pool: pool member 2 is named 'win-a' like member 1",
        ),
        (
            "pool:\n" + VM.format(name="win-a") + "  - {kind: sim, name: s}\n",
            "pool.yaml:2:3: pool: a pool lists Windows VMs or simulators (kind: sim), not both",
        ),
        (
            "pool:\n  - {kind: sim, name: a}\n  - {kind: sim, name: b, seed: 7}\n",
            "pool.yaml:2:3: pool: pool member 2 (b) is a simulator set up differently from member 1 (a)",
        ),
        (
            "pool:\n" + VM.format(name="win-a").replace("win-a.example.test", "'win a'"),
            "pool.yaml:3:11: pool[0].host: 'win a' is not a host name or an IP address",
        ),
        (
            "pool:\n  - kind: sim\n    nme: b\n",
            "pool.yaml:3:5: pool[0].nme: unknown key 'nme' in pool[0] (did you mean 'name'?)",
        ),
    ],
)
def test_pool_mistakes_are_reported_at_their_line_and_column(
    tmp_path: Path, text: str, expected: str
) -> None:
    with pytest.raises(ScenarioErrors) as caught:
        load_any_target_config(write(tmp_path, text))
    assert expected in str(caught.value)


def test_lkdh_run_refuses_a_pool_and_says_what_to_use(tmp_path: Path) -> None:
    path = write(tmp_path, "pool:\n" + VM.format(name="win-a") + VM.format(name="win-b"))
    factory = TargetFactory(target_config=path)
    with pytest.raises(TargetError, match=r"lists a pool of 2 VMs: run it with pytest \(-n N"):
        factory._windows_machine(tmp_path / "out")


def test_two_workers_lease_different_members_and_a_busy_pool_says_so(tmp_path: Path) -> None:
    healthy = lambda name: f"{name} ok"  # noqa: E731
    first = WorkerLease(["a", "b"], tmp_path, "gw0", healthy, wait_seconds=0)
    second = WorkerLease(["a", "b"], tmp_path, "gw1", healthy, wait_seconds=0)
    assert (first.acquire(), second.acquire()) == ("a", "b")
    third = WorkerLease(["a", "b"], tmp_path, "gw2", healthy, wait_seconds=0)
    with pytest.raises(PoolExhausted, match=r"no machine of the pool came free within 0 s \(busy: a, b\)"):
        third.acquire()
    first.release()
    assert third.acquire() == "a", "a released lease is free for the next worker"
    assert [(item["worker"], item["member"]) for item in lease_history(tmp_path)] == [
        ("gw0", "a"),
        ("gw1", "b"),
        ("gw2", "a"),
    ]


def test_a_member_failing_its_health_check_is_taken_out_for_every_worker(tmp_path: Path) -> None:
    def check(name: str) -> str:
        if name == "a":
            raise TargetError("winrm to a.example.test: connection refused")
        return "ok"

    lease = WorkerLease(["a", "b"], tmp_path, "gw0", check, wait_seconds=0)
    assert lease.acquire() == "b"
    (out,) = out_of_pool(tmp_path)
    assert (out.member, out.worker) == ("a", "gw0")
    assert out.reason == "health check failed: winrm to a.example.test: connection refused"
    lease.take_out("b stopped answering")
    other = WorkerLease(["a", "b"], tmp_path, "gw1", lambda name: "ok", wait_seconds=0)
    with pytest.raises(
        PoolExhausted, match=r"every machine in the pool is out: a: health check.*; b: b stopped"
    ):
        other.acquire()


def test_workers_start_at_their_own_member() -> None:
    assert [worker_index(w) for w in ("master", "gw0", "gw1", "gw12")] == [0, 0, 1, 12]


def test_shards_are_a_partition_stable_per_item() -> None:
    ids = [f"scenarios/s{n}.yaml::scenario_{n}[vm]" for n in range(500)]
    shards = [Shard(index, 3) for index in (1, 2, 3)]
    held = [[node for node in ids if shard.holds(node)] for shard in shards]
    assert sorted(node for part in held for node in part) == sorted(ids), "every item in exactly one shard"
    assert all(len(part) > 100 for part in held)
    assert shard_of(ids[7], 3) == shard_of(ids[7], 3) and parse_shard("2/3") == Shard(2, 3)
    for bad in ("0/3", "4/3", "1/0", "x"):
        with pytest.raises(ValueError):
            parse_shard(bad)


def test_target_check_checks_every_vm_of_a_pool_under_its_name(tmp_path: Path) -> None:
    """Both members on loopback ports nothing listens on: each one's report, each failing at TCP."""
    import socket
    import subprocess
    import sys

    ports = []
    for _ in range(2):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            ports.append(probe.getsockname()[1])
    members = [
        VM.format(name=name)
        .replace(f"{name}.example.test", "127.0.0.1")
        .replace("winrm: {", f"winrm: {{port: {port}, scheme: http, allow_insecure_http: true, ")
        for name, port in zip(("win-a", "win-b"), ports, strict=True)
    ]
    path = write(tmp_path, "pool:\n" + "".join(members))
    result = subprocess.run(
        [sys.executable, "-m", "harness.cli", "target", "check", str(path)],
        capture_output=True,
        text=True,
        check=False,
        env={"LKDH_WINRM_PASSWORD": "not-used-0", "PATH": "/usr/bin:/bin"},
        cwd=Path(__file__).resolve().parents[1],
    )
    assert result.returncode == 3, result.stdout + result.stderr
    assert result.stdout.index("== win-a") < result.stdout.index("== win-b")
    assert result.stdout.count("target check FAILED at: tcp") == 2, result.stdout


def test_a_seat_disconnects_from_its_machine_before_giving_up_the_lease(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A QEMU QMP socket serves one client: the next worker to lease a VM must not find the last
    holder still connected, so the machine and its hypervisor's monitor close while the lock is held."""
    from harness.pytest_pool import PoolSeat

    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw0")  # the seat's worker, whoever runs this test
    closed: list[tuple[str, bool]] = []

    def still_locked(name: str) -> bool:
        probe = WorkerLease(["win-a", "win-b"], tmp_path / "leases", "gw9", lambda _: "ok", wait_seconds=0)
        taken = probe._try(name)
        probe.release()
        return not taken

    class Machine:
        """WindowsMachine.close() disconnects its sessions and its hypervisor (its QMP monitor)."""

        def __init__(self, name: str) -> None:
            self.name = name

        def health_check(self) -> str:
            return f"{self.name} answers"

        def close(self) -> None:
            closed.append((f"{self.name} closed", still_locked(self.name)))

    path = write(tmp_path, "pool:\n" + VM.format(name="win-a") + VM.format(name="win-b"))
    factory = TargetFactory(target_config=path, machine_builder=lambda config, _: Machine(config.name))  # type: ignore[arg-type,return-value]
    seat = PoolSeat(factory, tmp_path / "leases", wait_seconds=0)
    assert seat.member() == "win-a"
    seat.take_out("win-a stopped answering")
    assert closed == [("win-a closed", True)], "closed while still leased"
    assert seat.member() == "win-b" and not still_locked("win-a"), "win-a is free once out"
    seat.release()
    assert closed[1:] == [("win-b closed", True)]
    assert not still_locked("win-b"), "then the lock is free"
    seat.release()
    assert len(closed) == 2, "releasing twice closes nothing twice"
