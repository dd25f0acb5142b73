"""A minimal RFC 6455 WebSocket server standing in for Cloudflare's tail endpoint (stdlib only).

It listens on 127.0.0.1:0 in a thread. For each connection it reads the HTTP Upgrade request,
answers 101 with Sec-WebSocket-Accept (base64(SHA-1(key + GUID))) and, when the client asks for
it, the `trace-v1` subprotocol. Client frames are read whether masked or not (RFC 6455 wants
them masked; wrangler's tail client has been seen sending them unmasked): text and binary
messages (with continuation frames) are recorded, pings are answered with pongs, a close is
echoed. send_event() pushes a text frame (unmasked, as a server must) with one
TailEventMessage as JSON to every open connection; send_fragmented() the same in several
frames with a ping between them; close_all() a close frame with a code. With an ssl_context
the server speaks TLS (wss://); answer_pings = False makes it stop answering pings.
"""
import base64
import hashlib
import json
import socket
import struct
import threading
import time

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_FRAME = 16 * 1024 * 1024


def accept_key(key):
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


def encode_frame(opcode, payload, mask=None):
    """One final frame; mask (4 bytes) for client-side frames, None for server frames."""
    head = bytes([0x80 | opcode])
    n = len(payload)
    mbit = 0x80 if mask is not None else 0
    if n < 126:
        head += bytes([mbit | n])
    elif n < 65536:
        head += bytes([mbit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mbit | 127]) + struct.pack("!Q", n)
    if mask is not None:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        head += mask
    return head + payload


class _Conn:
    def __init__(self, server, sock):
        self.server = server
        self.sock = sock
        self.buf = b""
        self.send_lock = threading.Lock()
        self.request = None      # (request line, {header: value})
        self.protocol = None
        self.messages = []       # (opcode, bytes)
        self.masked = []         # per client frame: True when it was masked
        self.pings = 0
        self.closed = False

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _read_head(self):
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk
            if len(self.buf) > 65536:
                raise ValueError("handshake too large")
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        return lines[0], headers

    def send(self, opcode, payload):
        with self.send_lock:
            self.sock.sendall(encode_frame(opcode, payload))

    def run(self):
        try:
            line, headers = self._read_head()
            self.request = (line, headers)
            key = headers.get("sec-websocket-key")
            if (not line.startswith("GET ") or "websocket" not in
                    headers.get("upgrade", "").lower() or not key):
                self.sock.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                return
            wanted = [p.strip() for p in headers.get("sec-websocket-protocol", "").split(",")
                      if p.strip()]
            resp = ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                    "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n" % accept_key(key))
            if "trace-v1" in wanted:
                self.protocol = "trace-v1"
                resp += "Sec-WebSocket-Protocol: trace-v1\r\n"
            self.sock.sendall((resp + "\r\n").encode())
            self.server._opened(self)
            self._frames()
        except (EOFError, OSError, ValueError):
            pass
        finally:
            self.closed = True
            try:
                self.sock.close()
            except OSError:
                pass
            self.server._changed()

    def _frames(self):
        parts = []
        first_op = None
        while True:
            b0, b1 = self._read(2)
            fin, opcode = b0 & 0x80, b0 & 0x0F
            masked, n = b1 & 0x80, b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._read(8))[0]
            if n > MAX_FRAME:
                raise ValueError("frame too large")
            mask = self._read(4) if masked else None
            payload = self._read(n)
            if mask is not None:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            with self.server.lock:
                self.masked.append(bool(masked))
            if opcode == 0x9:  # ping
                self.pings += 1
                if self.server.answer_pings:
                    self.send(0xA, payload)
            elif opcode == 0xA:  # pong
                pass
            elif opcode == 0x8:  # close: echo the status code
                try:
                    self.send(0x8, payload[:2])
                except OSError:
                    pass
                return
            elif opcode in (0x1, 0x2, 0x0):
                if opcode != 0x0:
                    first_op = opcode
                    parts = []
                parts.append(payload)
                if fin:
                    with self.server.lock:
                        self.messages.append((first_op, b"".join(parts)))
                    self.server._changed()


class TailServer:
    def __init__(self, ssl_context=None):
        self.lock = threading.Condition()
        self.conns = []
        self.sock = None
        self.thread = None
        self.ssl_context = ssl_context
        self.answer_pings = True

    def start(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()
        return self

    @property
    def port(self):
        return self.sock.getsockname()[1]

    def _accept(self):
        while True:
            try:
                s, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(s,), daemon=True).start()

    def _serve(self, s):
        if self.ssl_context is not None:
            try:
                s.settimeout(10)
                s = self.ssl_context.wrap_socket(s, server_side=True)
                s.settimeout(None)
            except (OSError, ValueError):
                s.close()
                return
        _Conn(self, s).run()

    def _opened(self, conn):
        with self.lock:
            self.conns.append(conn)
            self.lock.notify_all()

    def _changed(self):
        with self.lock:
            self.lock.notify_all()

    def open_conns(self):
        with self.lock:
            return [c for c in self.conns if not c.closed]

    def wait_connected(self, timeout=60.0, count=1, check=None):
        """Waits until count connections completed the handshake; returns the open ones."""
        deadline = time.monotonic() + timeout
        while True:
            conns = self.open_conns()
            if len(conns) >= count:
                return conns
            if time.monotonic() > deadline:
                raise AssertionError("no WebSocket client connected to the tail server within "
                                     "%.0f s" % timeout)
            if check is not None:
                check()
            with self.lock:
                self.lock.wait(0.2)

    def wait_message(self, conn, timeout=30.0):
        deadline = time.monotonic() + timeout
        with self.lock:
            while not conn.messages:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("the tail client sent no message within %.0f s" %
                                         timeout)
                self.lock.wait(min(left, 0.2))
            return conn.messages[0]

    def send_event(self, event):
        """Sends one TailEventMessage (a dict) to every open connection; returns how many."""
        data = json.dumps(event).encode()
        n = 0
        for c in self.open_conns():
            try:
                c.send(0x1, data)
                n += 1
            except OSError:
                pass
        return n

    def send_fragmented(self, event, pieces=3):
        """One TailEventMessage in `pieces` frames (text, continuation...) with a ping between
        the first two; returns the number of connections it went to."""
        data = json.dumps(event).encode()
        step = max(1, -(-len(data) // pieces))
        chunks = [data[i:i + step] for i in range(0, len(data), step)]
        n = 0
        for c in self.open_conns():
            try:
                with c.send_lock:
                    for i, chunk in enumerate(chunks):
                        head = (0x80 if i == len(chunks) - 1 else 0) | (0x1 if i == 0 else 0x0)
                        n_ = len(chunk)
                        if n_ < 126:
                            h = bytes([head, n_])
                        elif n_ < 65536:
                            h = bytes([head, 126]) + struct.pack("!H", n_)
                        else:
                            h = bytes([head, 127]) + struct.pack("!Q", n_)
                        c.sock.sendall(h + chunk)
                        if i == 0:
                            c.sock.sendall(encode_frame(0x9, b"server ping"))
                n += 1
            except OSError:
                pass
        return n

    def close_all(self, code, reason=b""):
        """Sends a close frame with code to every open connection (the client echoes it)."""
        for c in self.open_conns():
            try:
                c.send(0x8, struct.pack("!H", code) + reason)
            except OSError:
                pass

    def stop(self):
        try:
            self.sock.close()
        except OSError:
            pass
        for c in self.open_conns():
            try:
                c.send(0x8, struct.pack("!H", 1001))
                c.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
