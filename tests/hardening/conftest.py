from tests.mailing.conftest import smtp_sink  # noqa: F401  (the local relay, for what receivers see)
