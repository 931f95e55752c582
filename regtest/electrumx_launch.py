"""Start ElectrumX (run by .venv-electrumx's python, so it imports nothing from this project).

ElectrumX 2 pads TCP replies against traffic analysis and, to pad well, holds small messages back for up to
PaddedRSTransport.WAIT_FOR_BUFFER_GROWTH_SECONDS (1 s) after the previous send. It has no setting for that,
and on a loopback regtest stack the hold-back only adds up to a second to every request/notification round
trip of the daemon under test. REGTEST_ELECTRUMX_PADDING_WAIT (seconds) replaces the constant when set; the
stack sets 0 (replies still padded, sent at once). Everything else is stock `electrumx_server`.
"""

import os

from electrumx.cli.electrumx_server import main
from electrumx.server.transport import PaddedRSTransport

if __name__ == "__main__":
    wait = os.environ.get("REGTEST_ELECTRUMX_PADDING_WAIT")
    if wait:
        PaddedRSTransport.WAIT_FOR_BUFFER_GROWTH_SECONDS = float(wait)
    main()
