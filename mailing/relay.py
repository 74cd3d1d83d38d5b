"""The delivery mailer for a real relay: Django's SMTP backend, plus SMTPUTF8 for the internationalised
addresses Mandrill accepts (`to-тест@příklad.cz`): Django's backend refuses a non-ASCII local part; and,
for the plain addresses nearly all mail has, a leaner envelope that a relay offering PIPELINING takes
in one round trip."""

from __future__ import annotations

import contextlib
import re
import smtplib
from email import policy

from django.core.mail.backends.smtp import EmailBackend

# An address Django's prep_address would give back unchanged (ASCII, a dot-atom local part, a domain of
# letters, digits and hyphens): it is used as it is, without parsing it again for every message.
_PLAIN_ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*"
)


class RelayEmailBackend(EmailBackend):
    def _send(self, email_message) -> bool:
        addresses = [email_message.from_email, *email_message.recipients()]
        if all(_PLAIN_ADDRESS.fullmatch(address) for address in addresses):
            if not email_message.recipients():
                return False
            try:
                send_plain(
                    self.connection,
                    addresses[0],
                    addresses[1:],
                    email_message.message().as_bytes(policy=policy.SMTP),
                )
            except smtplib.SMTPException:
                if not self.fail_silently:
                    raise
                return False
            return True
        if all(address.isascii() for address in addresses):
            return super()._send(email_message)
        from_email = self.prep_address(email_message.from_email, force_ascii=False)
        recipients = [self.prep_address(address, force_ascii=False) for address in email_message.recipients()]
        data = email_message.message().as_bytes(policy=policy.SMTPUTF8)  # ours ignore it: built so
        try:
            self.connection.sendmail(from_email, recipients, data, mail_options=["SMTPUTF8"])
        except smtplib.SMTPException:
            if not self.fail_silently:
                raise
            return False
        return True


def send_plain(smtp: smtplib.SMTP, sender: str, recipients: list[str], data: bytes) -> dict:
    """`smtp.sendmail(sender, recipients, data)` for addresses that match _PLAIN_ADDRESS (written as
    <address>, which is what smtplib's parsing of each would give) and CRLF-ended bytes: the same
    replies read, the same exceptions raised, the same RSET after a refusal. Where the relay offers
    PIPELINING (RFC 2920), MAIL, every RCPT and DATA are written at once and their replies read in
    order: two round trips a message instead of three and more."""
    smtp.ehlo_or_helo_if_needed()
    size = f" SIZE={len(data)}" if smtp.does_esmtp and smtp.has_extn("size") else ""
    commands = [f"MAIL FROM:<{sender}>{size}", *(f"RCPT TO:<{address}>" for address in recipients)]
    if not (smtp.does_esmtp and smtp.has_extn("pipelining")):
        replies = []
        for command in commands:
            smtp.putcmd(command)
            replies.append(smtp.getreply())
            if replies[-1][0] == 421 or replies[0][0] != 250:
                break  # as smtplib: no recipient after a refused sender, nothing after a 421
        refused = _envelope_refused(smtp, sender, recipients, replies, data_reply=None)
        smtp.putcmd("DATA")
        code, reply = smtp.getreply()
        if code != 354:
            raise smtplib.SMTPDataError(code, reply)  # as smtplib's data(), without a reset
        smtp.send(_data_lines(data))
        code, reply = smtp.getreply()
    else:
        smtp.send("".join(f"{command}\r\n" for command in [*commands, "DATA"]))
        replies = [smtp.getreply() for _ in commands]
        data_reply = smtp.getreply()
        refused = _envelope_refused(smtp, sender, recipients, replies, data_reply=data_reply)
        code, reply = data_reply
        if code == 354:
            smtp.send(_data_lines(data))
            code, reply = smtp.getreply()
    if code != 250:
        _end_transaction(smtp, code)
        raise smtplib.SMTPDataError(code, reply)
    return refused


def _envelope_refused(smtp: smtplib.SMTP, sender: str, recipients: list[str], replies: list, *, data_reply):
    """The recipients refused (address → (code, reply)), as smtplib.sendmail gathers them; raises as it
    does when the sender, a 421 or every recipient was refused. `data_reply` is DATA's, already asked
    for when pipelining: a relay that said 354 all the same gets an empty message ended (RFC 2920 §3.1)
    before the RSET."""
    (code, reply), *recipient_replies = replies
    failure: smtplib.SMTPException | None = None
    refused = {}
    if code != 250:
        failure = smtplib.SMTPSenderRefused(code, reply, sender)
    else:
        # (fewer replies than recipients only after a 421, where this stops anyway)
        for address, (code, reply) in zip(recipients, recipient_replies, strict=False):
            if code not in (250, 251):
                refused[address] = (code, reply)
            if code == 421:
                failure = smtplib.SMTPRecipientsRefused(refused)
                break
        if failure is None and len(refused) == len(recipients):
            failure = smtplib.SMTPRecipientsRefused(refused)
    if failure is None:
        return refused
    if code != 421 and data_reply is not None and data_reply[0] == 354:
        smtp.send(b".\r\n")
        smtp.getreply()
    _end_transaction(smtp, code)
    raise failure


def _end_transaction(smtp: smtplib.SMTP, code: int) -> None:
    """What smtplib does after a refusal: a 421 closes the connection, anything else resets it."""
    if code == 421:
        smtp.close()
        return
    with contextlib.suppress(smtplib.SMTPServerDisconnected):  # smtplib's _rset: a gone relay is reset
        smtp.rset()


def _data_lines(data: bytes) -> bytes:
    """The message as DATA sends it (smtplib.SMTP.data): a dot that starts a line doubled, ended by a
    lone dot. By bytes.replace rather than smtplib's regular expression, which is ten times slower over
    the large attachments a copy may carry."""
    quoted = data.replace(b"\n.", b"\n..")
    if quoted.startswith(b"."):
        quoted = b"." + quoted
    if not quoted.endswith(b"\r\n"):
        quoted += b"\r\n"
    return quoted + b".\r\n"
