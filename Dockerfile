# One image for every daemon (docker-compose.yml picks the daemon with the command), and a BCH image on top
# of it with Electron Cash. Build context: only what .dockerignore lets through (never conf/.env).
#
#   docker build -t coin-daemons .                                   # the default target, `runtime`
#   docker build --target bch -t coin-daemons-bch \
#       --build-arg ELECTRON_CASH_TARBALL=deploy/electron-cash/Electron-Cash-4.4.5.tar.gz .

FROM debian:bookworm-slim AS base
ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    IN_DOCKER=1

# The same Debian packages as the Makefile: Electrum and Monero come from Debian.
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv python3-pip python3-electrum monero sqlite3 ca-certificates \
    && rm -rf /var/lib/apt/lists/*

# Named volumes mounted under /data take this ownership, so the unprivileged user can write there.
RUN useradd --create-home --uid 1000 daemon-user \
    && mkdir -p /data/btc /data/bch /data/xmr /data/monerod /data/xmrig /data/bitmessage \
    && chown -R daemon-user:daemon-user /data

# Dependencies first, from setup.cfg alone: a code change does not reinstall them.
# System site packages: the virtualenv sees Debian's Electrum.
WORKDIR /app
COPY setup.cfg deploy/requirements.py /tmp/deps/
RUN python3 -m venv --system-site-packages /opt/venv \
    && python3 /tmp/deps/requirements.py /tmp/deps/setup.cfg > /tmp/deps/requirements.txt \
    && /opt/venv/bin/pip install --no-cache-dir -r /tmp/deps/requirements.txt \
    && rm -rf /tmp/deps
ENV PATH=/opt/venv/bin:$PATH

COPY setup.cfg pyproject.toml README.md ./
COPY daemons ./daemons
COPY regtest ./regtest
COPY spec ./spec
COPY deploy/monerod.sh /usr/local/bin/monerod-entrypoint
RUN pip install --no-cache-dir --no-deps -e . && chmod 755 /usr/local/bin/monerod-entrypoint

# The containers' layout: data on volumes under /data, monerod as the compose service of that name.
# Settings given to the container (compose's env_file conf/.env) override these.
ENV BTC_DATA_PATH=/data/btc \
    BCH_DATA_PATH=/data/bch \
    XMR_DATA_PATH=/data/xmr \
    XMR_MONEROD_URL=http://monerod:18081 \
    XMRIG_DATA_PATH=/data/xmrig \
    BITMESSAGE_DATA_PATH=/data/bitmessage

# BCH: Electron Cash is on no package registry; its source release tarball comes from the build context.
FROM base AS bch
ARG ELECTRON_CASH_TARBALL=deploy/electron-cash/Electron-Cash.tar.gz
COPY ${ELECTRON_CASH_TARBALL} /tmp/electron-cash.tar.gz
RUN pip install --no-cache-dir /tmp/electron-cash.tar.gz && rm /tmp/electron-cash.tar.gz \
    && python -c "import electroncash.version as v; print('Electron Cash', v.PACKAGE_VERSION)"
USER daemon-user
EXPOSE 5004
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 CMD ["python", "-m", "daemons.healthcheck"]
ENTRYPOINT ["python", "-m", "daemons"]
CMD ["bch"]

# The default target: BTC, XMR (and monerod), XMRIG and BITMESSAGE.
FROM base AS runtime
USER daemon-user
EXPOSE 5000 5011 5012 5013 18081
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 CMD ["python", "-m", "daemons.healthcheck"]
ENTRYPOINT ["python", "-m", "daemons"]
CMD ["btc"]
