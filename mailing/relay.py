"""The delivery mailer for a real relay: Django's SMTP backend, plus SMTPUTF8 for the internationalised
addresses Mandrill accepts (`to-тест@příklad.cz`): Django's backend refuses a non-ASCII local part."""

from __future__ import annotations

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
                self.connection.sendmail(
                    addresses[0], addresses[1:], email_message.message().as_bytes(linesep="\r\n")
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
