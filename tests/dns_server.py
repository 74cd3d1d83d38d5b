"""A small DNS server on loopback for the tests that look records up through dnspython, as production does."""

import socket
import threading

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset


class LocalDNS:
    """Answers TXT queries from `records` ({name: [values]}) and A/AAAA queries from `addresses`
    ({name: [ip, ...]}); names in `silent` get no answer at all."""

    def __init__(self):
        self.records: dict[str, list[str]] = {}
        self.addresses: dict[str, list[str]] = {}
        self.silent: set[str] = set()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while self.running:
            try:
                wire, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            query = dns.message.from_wire(wire)
            question = query.question[0]
            name = question.name.to_text().rstrip(".")
            if name in self.silent:
                continue
            response = dns.message.make_response(query)
            values = self.records.get(name)
            if question.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA) and name in self.addresses:
                kind = "A" if question.rdtype == dns.rdatatype.A else "AAAA"
                found = [ip for ip in self.addresses[name] if (":" in ip) == (kind == "AAAA")]
                if found:
                    response.answer.append(dns.rrset.from_text(question.name, 60, "IN", kind, *found))
                self.sock.sendto(response.to_wire(), peer)
                continue
            if values is None:
                response.set_rcode(dns.rcode.NXDOMAIN)
            elif question.rdtype == dns.rdatatype.TXT:
                # A TXT string holds at most 255 bytes: longer values (a DKIM key) travel as several.
                texts = [" ".join(f'"{v[i : i + 255]}"' for i in range(0, len(v), 255)) for v in values]
                response.answer.append(dns.rrset.from_text(question.name, 60, "IN", "TXT", *texts))
            self.sock.sendto(response.to_wire(), peer)

    def close(self):
        self.running = False
        self.sock.close()
