"""A real Dovecot IMAP server for the tests: one private instance per test, in a temp directory.

The mail connector is tested against real Dovecot rather than a fake because IMAP's hard parts
(UIDVALIDITY, UIDPLUS, IDLE pushes, CONDSTORE, SPECIAL-USE, server restarts) are exactly where a
fake would agree with our own misunderstandings. Dovecot comes from Debian's ``dovecot-imapd``;
``scripts/services.sh`` installs it. Each instance has its own config file, ``base_dir`` and
``state_dir`` in a temp directory and listens on a free port on 127.0.0.1, so instances never
meet each other or a system-wide Dovecot. It needs root (it switches to the ``dovecot`` and
``dovenull`` users), which the tests have on the build machines.

Starting takes about 20 ms (and killing it 10), so the ``dovecot`` fixture gives every test its
own server, which makes stopping and restarting it safe; ``dovecot_user`` adds a fresh user with a
random name and password to it::

    from tests.dovecot import dovecot, dovecot_user  # noqa: F401  (in a conftest)

    async def test_fetches_new_mail(dovecot: Dovecot, dovecot_user: MailUser) -> None:
        uid = dovecot.append(dovecot_user.name, "INBOX", b"Subject: hi\\r\\n\\r\\nbody\\r\\n")
        ... connect the hub to dovecot.host, dovecot.port with dovecot_user ...
        dovecot.stop()      # the server goes away: sessions get BYE, new connections are refused
        dovecot.restart()   # same port, same mail

The helper methods use the standard library's blocking ``imaplib``: each takes a few
milliseconds against a local server, so calling them from an async test is fine; use
``await asyncio.to_thread(dovecot.append, ...)`` if the test's own event loop must keep serving
meanwhile. Every user has INBOX and the folders in ``DEFAULT_MAILBOXES`` (Drafts, Sent, Trash,
Junk, Archive), which carry their SPECIAL-USE flags: Dovecot 2.3 takes SPECIAL-USE only from its
config (it accepts ``CREATE ... (USE (...))`` but ignores the USE), so that is where they are
defined; ``create_folder(..., special_use=...)`` adds a definition and reloads the server.

Timings a test may notice, all Dovecot's own: an IDLE session hears of new mail about 0.5 s after
it arrives (Dovecot batches change notifications), and a failed login is answered after up to
0.5 s (its failure-delay timer ticks at that rate even with ``auth_failure_delay = 0``).
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import imaplib
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

import pytest

DOVECOT_BIN = Path("/usr/sbin/dovecot")
DOVECONF_BIN = Path("/usr/bin/doveconf")
HOST = "127.0.0.1"
#: Folder name -> SPECIAL-USE flag; every user of an instance has these (``auto = subscribe``).
DEFAULT_MAILBOXES: Mapping[str, str] = {
    "Drafts": "\\Drafts",
    "Sent": "\\Sent",
    "Trash": "\\Trash",
    "Junk": "\\Junk",
    "Archive": "\\Archive",
}

_LOG_TAIL_LINES = 40
_GRACE_SECONDS = 1.0  # how long a graceful stop waits for Dovecot to finish on its own
_unclosed: set[Dovecot] = set()  # closed at exit if a test (or Ctrl-C) left them behind


class DovecotError(RuntimeError):
    """The test server could not do what was asked; the message carries the tail of its log."""


class MailUser(NamedTuple):
    """A mailbox owner: unpacks as ``(name, password)`` for the fixtures' callers."""

    name: str
    password: str


class Dovecot:
    """One private Dovecot instance (IMAP only, plaintext, 127.0.0.1) living in its own temp directory.

    Users are kept in passwd-files with ``{PLAIN}`` passwords, which Dovecot reads at each login,
    so ``add_user`` works before and after ``start``. Mail is stored as maildirs under
    ``<root>/mail/<user>``, owned by the ``dovecot`` user as the static userdb says.
    """

    def __init__(
        self,
        mailboxes: Mapping[str, str] | None = None,
        *,
        tls: tuple[Path, Path] | None = None,
        capability: str | None = None,
    ) -> None:
        """``mailboxes`` maps folder names to SPECIAL-USE flags that every user has (default: ``DEFAULT_MAILBOXES``).

        ``tls`` is ``(cert.pem, key.pem)``: the port then offers STARTTLS (plaintext logins stay
        allowed, for the helpers here). ``capability`` replaces what IMAP advertises, e.g. a list
        without IDLE for a server clients must poll.
        """
        self._tls = tls
        self._capability = capability
        self._root = Path(tempfile.mkdtemp(prefix="hub-dovecot-"))
        _unclosed.add(self)
        # Dovecot's unprivileged processes (dovecot, dovenull) must reach base_dir's sockets and
        # the passwd-file through this directory; mkdtemp makes it 0700.
        self._root.chmod(0o755)
        for sub in ("base", "state", "users"):
            (self._root / sub).mkdir(mode=0o755)
        (self._root / "mail").mkdir(mode=0o755)
        if _has_user("dovecot"):  # else start() explains what is missing
            shutil.chown(self._root / "mail", "dovecot", "dovecot")
        self._instance = f"hubtest-{uuid.uuid4().hex[:8]}"
        self._mailboxes: dict[str, tuple[str, bool]] = {
            name: (use, True) for name, use in (DEFAULT_MAILBOXES if mailboxes is None else mailboxes).items()
        }
        self._users: dict[str, str] = {}
        self._port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None

    # -- where it is ------------------------------------------------------------------------

    @property
    def host(self) -> str:
        """Always 127.0.0.1: the instance never listens anywhere else."""
        return HOST

    @property
    def port(self) -> int:
        """The IMAP (plaintext) port, chosen free at the first ``start`` and kept by ``restart``."""
        if self._port is None:
            raise DovecotError("the Dovecot instance has not been started, so it has no port yet")
        return self._port

    @property
    def root(self) -> Path:
        """The temp directory holding the config, base_dir, state_dir, users and mail."""
        return self._root

    @property
    def log_path(self) -> Path:
        """Dovecot's own log (logins, errors); read it when a test fails for reasons the hub cannot see."""
        return self._root / "dovecot.log"

    @property
    def running(self) -> bool:
        """Whether the master process started by ``start`` is still alive."""
        return self._process is not None and self._process.poll() is None

    def log(self) -> str:
        """Dovecot's log so far, plus what the master printed before its log was set up."""
        parts = []
        for path in (self._root / "master.out", self.log_path):
            with contextlib.suppress(OSError):
                parts.append(path.read_text(errors="replace"))
        return "".join(parts)

    # -- lifecycle --------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> None:
        """Start the instance and return once a client can connect and reads the ``* OK`` greeting.

        The first start picks a free port; if another process takes it before Dovecot binds it,
        another port is tried. ``restart`` keeps the port (clients reconnect where they were).
        """
        if self.running:
            return
        _check_can_run()
        if self._port is not None:
            self._start_on(self._port, timeout)
            return
        for attempt in range(3):
            port = _free_port()
            try:
                self._start_on(port, timeout)
            except DovecotError:
                if attempt == 2 or "Address already in use" not in self.log():
                    raise
                continue
            self._port = port
            return

    def stop(self, *, graceful: bool = True, timeout: float = 10.0) -> None:
        """Take the server down; return once the port refuses connections and no process is left.

        ``graceful`` is a clean shutdown: SIGTERM to the master (the pid in ``base_dir/master.pid``)
        and, at the same moment, to its children, so logged-in sessions are told
        ``* BYE Server shutting down.`` at once; whatever still runs after a second (an imap-login
        process holding an unauthenticated client lingers for several) is killed. That takes
        10-100 ms. Sent to the master alone, SIGTERM makes Dovecot keep the port open for another
        1-1.5 s and its children for up to 10 s. ``graceful=False`` is a crash or a pulled cable:
        SIGKILL to every process of the instance, and sessions see their connection end without
        a word. Mail already acknowledged (APPEND answered) is on disk either way, so ``restart``
        brings it back.
        """
        process = self._process
        if process is None:
            return
        deadline = time.monotonic() + timeout
        if process.poll() is None and graceful:
            # The master leads the process group (its own session, see _start_on).
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(_GRACE_SECONDS)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        try:
            process.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired as exc:
            raise DovecotError(f"the Dovecot master (pid {process.pid}) did not exit{self._log_tail()}") from exc
        # Children are re-parented and reaped by init; wait until none is alive (zombies hold no socket).
        while _live_group_members(process.pid) and time.monotonic() < deadline:
            time.sleep(0.005)
        while self._port is not None and _port_open(self._port) and time.monotonic() < deadline:
            time.sleep(0.005)
        if self._port is not None and _port_open(self._port):
            raise DovecotError(f"port {self._port} still accepts connections after Dovecot stopped{self._log_tail()}")
        # A stale pid file is harmless unless the pid gets reused; then Dovecot would refuse to start.
        with contextlib.suppress(OSError):
            (self._root / "base" / "master.pid").unlink()
        self._process = None

    def restart(self, *, graceful: bool = True, timeout: float = 10.0) -> None:
        """Stop and start again on the same port with the same users and mail."""
        self.stop(graceful=graceful, timeout=timeout)
        self.start(timeout=timeout)

    def close(self) -> None:
        """Kill the instance (no need to be gentle) and delete its directory."""
        with contextlib.suppress(DovecotError):
            self.stop(graceful=False)
        shutil.rmtree(self._root, ignore_errors=True)
        _unclosed.discard(self)

    def __enter__(self) -> Dovecot:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- users and mail ---------------------------------------------------------------------

    def add_user(self, name: str, password: str) -> MailUser:
        """Add (or change the password of) a user; logins are case-insensitive, as Dovecot's default.

        Each user has a passwd-file of its own (``users/<name>``). Dovecot looks at a passwd-file
        at most once a second, so with one shared file a user added right after another user's
        login would be unknown for up to a second; a new file is read at once. Changing the
        password of an existing user while the server runs therefore waits for the next second.
        """
        if not name or any(c in name for c in ":\r\n/ ") or any(c in password for c in ":\r\n"):
            raise ValueError(
                f"user names and passwords cannot hold ':' or line breaks (names no '/' or spaces): {name!r}"
            )
        name = name.lower()
        changed = self._users.get(name, password) != password
        self._users[name] = password
        path = self._root / "users" / name
        old_mtime = int(path.stat().st_mtime) if path.exists() else 0
        _atomic_write(path, f"{name}:{{PLAIN}}{password}::::::\n")
        if changed:
            # Dovecot re-reads the file when mtime (whole seconds) or size differ from what it
            # read, and it checks at most once a second.
            mtime = max(int(time.time()), old_mtime + 1)
            os.utime(path, (mtime, mtime))
            if self.running:
                time.sleep(1 - time.time() % 1 + 0.01)
        return MailUser(name, password)

    @contextlib.contextmanager
    def imap(self, user: str, timeout: float = 10.0) -> Iterator[imaplib.IMAP4]:
        """A logged-in ``imaplib`` connection as ``user`` (added by ``add_user``), logged out afterwards."""
        password = self._users.get(user.lower())
        if password is None:
            raise DovecotError(f"no user {user!r} on this Dovecot; add it with add_user() first")
        client = imaplib.IMAP4(self.host, self.port, timeout=timeout)
        try:
            client.login(user, password)
            yield client
        finally:
            with contextlib.suppress(imaplib.IMAP4.error, OSError):
                client.logout()

    def append(
        self,
        user: str,
        folder: str,
        raw: bytes,
        flags: Iterable[str] = (),
        internal_date: datetime | None = None,
    ) -> int:
        """Deliver ``raw`` into ``folder`` (created if missing) and return its UID (from UIDPLUS's APPENDUID).

        ``raw`` should use CRLF line ends, as IMAP does: ``imaplib`` turns bare LF and CR into
        CRLF, so a FETCH returns exactly these bytes only then. ``flags`` are e.g. ``"\\\\Seen"``.
        """
        with self.imap(user) as client:
            self._ensure_folder(client, folder)
            flag_list = "(" + " ".join(flags) + ")" if flags else None
            date = imaplib.Time2Internaldate(internal_date) if internal_date is not None else None
            typ, data = client.append(_mailbox_arg(folder), flag_list, date, raw)
            self._check(typ, data, f"APPEND to {folder!r} as {user!r}")
        match = re.search(rb"\[APPENDUID \d+ (\d+)\]", _first(data))
        if match is None:
            raise DovecotError(f"APPEND answered without APPENDUID: {data!r}")
        return int(match.group(1))

    def uidvalidity(self, user: str, folder: str) -> int:
        """The folder's current UIDVALIDITY (STATUS, so no folder gets selected)."""
        with self.imap(user) as client:
            return self._uidvalidity(client, folder)

    def create_folder(self, user: str, folder: str, special_use: str | None = None) -> None:
        """Create ``folder`` for ``user`` (nothing happens if it exists); nested names use ``/``.

        With ``special_use`` (e.g. ``"\\\\Sent"``) the folder gets that SPECIAL-USE flag. Dovecot 2.3
        keeps such flags only in its config (``mailbox`` blocks of the inbox namespace), so a new
        flag is added there and the running server reloaded (SIGHUP); the flag then holds for a
        folder of that name of every user of this instance. The call returns once LIST shows it.
        """
        previous = self._mailboxes.get(folder)
        if special_use is not None and (previous is None or previous[0] != special_use):
            self._mailboxes[folder] = (special_use, previous is not None and previous[1])
            if self._process is not None:
                self._write_config(self.port)
                # A config Dovecot rejects would be ignored by the reload: check it first.
                check = subprocess.run(
                    [str(DOVECONF_BIN), "-n", "-c", str(self._root / "dovecot.conf")], capture_output=True, text=True
                )
                if check.returncode != 0:
                    if previous is None:
                        del self._mailboxes[folder]
                    else:
                        self._mailboxes[folder] = previous
                    self._write_config(self.port)
                    raise DovecotError(f"Dovecot rejects special_use {special_use!r}: {check.stderr.strip()}")
                self._reload()
        with self.imap(user) as client:
            self._ensure_folder(client, folder)
        if special_use is None:
            return
        deadline = time.monotonic() + 10
        while True:
            # Settings are read at login, so only a session opened after the reload shows the flag.
            with self.imap(user) as client:
                if special_use.lower() in (flag.lower() for flag in self._special_use(client, folder)):
                    return
            if time.monotonic() > deadline:
                raise DovecotError(f"{folder!r} did not get {special_use} after a reload{self._log_tail()}")
            time.sleep(0.02)

    def recreate_folder(self, user: str, folder: str) -> int:
        """Delete ``folder`` (and its mail) and create it again; return the new UIDVALIDITY, checked to differ.

        That is how a client meets a changed UIDVALIDITY: its cached UIDs of the folder mean
        nothing any more. IMAP cannot delete INBOX, so for INBOX the maildir is emptied and its
        index and uidlist removed on disk; Dovecot then gives it a new UIDVALIDITY. Sessions with
        INBOX *selected* at that moment get "internal error" answers rather than a clean
        notification: do it while the client is disconnected (between ``stop`` and ``restart``,
        like a mailbox restored from a backup) or while it has another folder selected.
        """
        before = self.uidvalidity(user, folder)
        if folder.upper() == "INBOX":
            self._reset_inbox_on_disk(user)
        else:
            with self.imap(user) as client:
                self._check(*client.delete(_mailbox_arg(folder)), f"DELETE {folder!r} as {user!r}")
                self._check(*client.create(_mailbox_arg(folder)), f"CREATE {folder!r} as {user!r}")
        after = self.uidvalidity(user, folder)
        if after == before:
            raise DovecotError(f"UIDVALIDITY of {folder!r} stayed {before} after it was re-created")
        return after

    # -- internals --------------------------------------------------------------------------

    def _start_on(self, port: int, timeout: float) -> None:
        self._write_config(port)
        with contextlib.suppress(OSError):
            (self._root / "base" / "master.pid").unlink()
        with open(self._root / "master.out", "ab") as out:
            # -F keeps the master in the foreground as our child, so an early death (a config
            # error) is seen at once; its own session makes the whole instance one process group.
            self._process = subprocess.Popen(
                [str(DOVECOT_BIN), "-F", "-c", str(self._root / "dovecot.conf")],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                code = self._process.returncode
                self._process = None
                raise DovecotError(f"Dovecot exited with status {code} while starting on port {port}{self._log_tail()}")
            try:
                with socket.create_connection((HOST, port), timeout=1) as conn:
                    greeting = _read_line(conn)
                if greeting.startswith(b"* OK"):
                    return
                last_error = DovecotError(f"unexpected greeting {greeting!r}")
            except OSError as exc:
                last_error = exc
            time.sleep(0.005)
        self.stop(graceful=False)
        raise DovecotError(
            f"Dovecot did not greet on {HOST}:{port} within {timeout} s ({last_error}){self._log_tail()}"
        )

    def _master_pid(self, process: subprocess.Popen[bytes]) -> int:
        try:
            return int((self._root / "base" / "master.pid").read_text().strip())
        except (OSError, ValueError):
            return process.pid

    def _reload(self) -> None:
        """SIGHUP: Dovecot re-reads its config; sessions logged in afterwards see the new settings."""
        if self._process is not None and self._process.poll() is None:
            os.kill(self._master_pid(self._process), signal.SIGHUP)

    def _write_config(self, port: int) -> None:
        root = self._root
        ssl = "ssl = no"
        if self._tls is not None:
            cert, key = self._tls
            ssl = f"ssl = yes\nssl_cert = <{cert}\nssl_key = <{key}"
        capability = f"  imap_capability = {self._capability}\n" if self._capability else ""
        mailboxes = "".join(
            f'  mailbox "{_config_escape(name)}" {{\n    special_use = {use}\n'
            + ("    auto = subscribe\n" if auto else "")
            + "  }\n"
            for name, (use, auto) in self._mailboxes.items()
        )
        config = f"""\
# Written by tests/dovecot.py for one test instance.
instance_name = {self._instance}
base_dir = {root}/base
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = {HOST}
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_verbose = yes
# Wrong passwords are answered within 0.5 s, not after the default 2 s: tests try them on purpose.
auth_failure_delay = 0
default_internal_user = dovecot
default_login_user = dovenull
# The static userdb's uid (dovecot, 108 or so) is below the default first_valid_uid of 500.
first_valid_uid = 1
first_valid_gid = 1
mail_location = maildir:{root}/mail/%u
# inotify tells IDLE sessions (0.5 s later: Dovecot batches changes); this is only the fallback poll.
mailbox_idle_check_interval = 1 secs
passdb {{
  driver = passwd-file
  # One file per user: see add_user for why.
  args = scheme=PLAIN {root}/users/%u
}}
userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={root}/mail/%u
}}
namespace inbox {{
  inbox = yes
  separator = /
{mailboxes}}}
protocol imap {{
  # The default of 10 sessions per user and IP is too few for a client with a session per folder.
  mail_max_userip_connections = 100
{capability}}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = {HOST}
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
  # Without this, every failed login from 127.0.0.1 delays all later logins from there (auth
  # penalty, up to 15 s): one test trying a wrong password would slow down the rest. Auth cannot
  # open a socket of mode 0, and then skips the penalty.
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""
        _atomic_write(root / "dovecot.conf", config)

    def _ensure_folder(self, client: imaplib.IMAP4, folder: str) -> None:
        if folder.upper() == "INBOX":
            return
        typ, data = client.create(_mailbox_arg(folder))
        if typ != "OK" and b"ALREADYEXISTS" not in _first(data).upper():
            self._check(typ, data, f"CREATE {folder!r}")

    def _uidvalidity(self, client: imaplib.IMAP4, folder: str) -> int:
        typ, data = client.status(_mailbox_arg(folder), "(UIDVALIDITY)")
        self._check(typ, data, f"STATUS {folder!r}")
        match = re.search(rb"UIDVALIDITY (\d+)", _first(data))
        if match is None:
            raise DovecotError(f"STATUS without UIDVALIDITY: {data!r}")
        return int(match.group(1))

    def _special_use(self, client: imaplib.IMAP4, folder: str) -> list[str]:
        """The flags LIST "" <folder> RETURN (SPECIAL-USE) shows for the folder ([] if it is not listed)."""
        typ, data = client._simple_command("LIST", '""', _mailbox_arg(folder), "RETURN", "(SPECIAL-USE)")
        self._check(typ, data, f"LIST {folder!r}")
        flags: list[str] = []
        for line in client.untagged_responses.pop("LIST", []):
            if isinstance(line, bytes) and line.startswith(b"("):
                flags += line[1 : line.index(b")")].decode(errors="replace").split()
        return flags

    def _reset_inbox_on_disk(self, user: str) -> None:
        maildir = self._root / "mail" / user.lower()
        for sub in ("cur", "new", "tmp"):
            for message in (maildir / sub).glob("*"):
                message.unlink()
        for path in maildir.glob("dovecot*"):
            if path.is_file() and (path.name == "dovecot-uidlist" or path.name.startswith("dovecot.index")):
                path.unlink()

    def _check(self, typ: str, data: list[object], what: str) -> None:
        if typ != "OK":
            raise DovecotError(f"{what} failed: {typ} {data!r}{self._log_tail()}")

    def _log_tail(self) -> str:
        lines = self.log().splitlines()[-_LOG_TAIL_LINES:]
        body = "\n".join(lines) if lines else "(empty)"
        return f"\n--- Dovecot's log ({self.log_path}) ---\n{body}"


# -- helpers ----------------------------------------------------------------------------------


def _check_can_run() -> None:
    if not DOVECOT_BIN.exists():
        raise DovecotError(
            f"Dovecot is not installed ({DOVECOT_BIN} is missing); scripts/services.sh installs it (dovecot-imapd)"
        )
    if os.geteuid() != 0:
        raise DovecotError("the Dovecot test server must run as root (it switches to the dovecot and dovenull users)")
    for user in ("dovecot", "dovenull"):
        if not _has_user(user):
            raise DovecotError(f"system user {user!r} is missing; reinstall Dovecot with scripts/services.sh")


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


def _read_line(conn: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\r\n"):
        chunk = conn.recv(1024)
        if not chunk:
            break
        data += chunk
    return data


def _live_group_members(pgid: int) -> list[int]:
    """Pids still running in the process group (zombies waiting for init to reap them don't count)."""
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(int(entry.name))
    return alive


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.chmod(0o644)
    os.replace(tmp, path)


def _first(data: list[object]) -> bytes:
    item = data[0] if data else b""
    return item if isinstance(item, bytes) else str(item).encode()


def _config_escape(name: str) -> str:
    return name.replace("\\", "\\\\").replace('"', '\\"')


def encode_mailbox_name(name: str) -> str:
    """IMAP's modified UTF-7 (RFC 3501 5.1.3), which Dovecot 2.3 expects for non-ASCII folder names."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            utf16 = "".join(pending).encode("utf-16-be")
            out.append("&" + base64.b64encode(utf16).rstrip(b"=").replace(b"/", b",").decode("ascii") + "-")
            pending.clear()

    for char in name:
        if 0x20 <= ord(char) <= 0x7E:
            flush()
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    flush()
    return "".join(out)


def _mailbox_arg(name: str) -> str:
    """A folder name as an IMAP quoted string (imaplib sends arguments as they are)."""
    encoded = encode_mailbox_name(name)
    return '"' + encoded.replace("\\", "\\\\").replace('"', '\\"') + '"'


@atexit.register
def _kill_leftovers() -> None:
    """An interrupted run (Ctrl-C, a crash) must not leave Dovecot masters and temp dirs behind."""
    for server in list(_unclosed):
        server.close()


# -- fixtures ---------------------------------------------------------------------------------


def _dovecot_fixture() -> Iterator[Dovecot]:
    """The body of the ``dovecot`` fixture, apart so the harness's tests can drive it."""
    server = Dovecot()
    try:
        server.start()
    except DovecotError as exc:
        server.close()
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    """A running Dovecot of the test's own (about 30 ms to start), killed and deleted afterwards.

    A plain fixture, so async tests use it as well. If Dovecot is missing the test fails (not
    skips): the mail connector would go untested otherwise, and ``scripts/services.sh`` fixes it.
    """
    yield from _dovecot_fixture()


@pytest.fixture
def dovecot_user(dovecot: Dovecot) -> MailUser:
    """A fresh user with a random name and password on the test's ``dovecot``: ``name, password = dovecot_user``."""
    return dovecot.add_user(f"user-{secrets.token_hex(4)}", secrets.token_urlsafe(12))
