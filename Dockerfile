# One image for every daemon; docker-compose.yml picks the daemon with the command.
FROM debian:bookworm-slim

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    IN_DOCKER=1

# The same Debian packages as the Makefile: Electrum and Monero come from Debian.
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv python3-pip python3-electrum monero sqlite3 ca-certificates \
    && rm -rf /var/lib/apt/lists/*

# A named volume mounted under /data takes this ownership, so the unprivileged user can write.
RUN useradd --create-home --uid 1000 daemon-user \
    && mkdir -p /data/btc /data/xmr /data/monerod /data/xmrig /data/bitmessage \
    && chown -R daemon-user:daemon-user /data
WORKDIR /app
COPY setup.cfg pyproject.toml README.md ./
COPY daemons ./daemons
COPY regtest ./regtest
COPY spec ./spec
COPY conf ./conf

# System site packages: the virtualenv sees Debian's Electrum.
RUN python3 -m venv --system-site-packages /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir -e .
ENV PATH=/opt/venv/bin:$PATH

USER daemon-user
VOLUME ["/data"]
ENTRYPOINT ["python", "-m", "daemons"]
CMD ["btc"]
