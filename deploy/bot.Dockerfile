# The bot's image (`threadsmith serve`), for those with a registry. Build from the repository's
# root:
#
#   docker build -f deploy/bot.Dockerfile -t threadsmith:latest .
#
# The bot starts rollouts through a Docker engine: mount its socket (see compose.yaml) or set
# DOCKER_HOST. It clones repositories with git, so git is in the image.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p threadsmith-bot

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends git ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd -m -U -s /usr/sbin/nologin threadsmith \
 && mkdir -p /var/lib/threadsmith && chown threadsmith:threadsmith /var/lib/threadsmith
COPY --from=build /src/target/release/threadsmith /usr/local/bin/threadsmith
ENV THREADSMITH_DATA_DIR=/var/lib/threadsmith THREADSMITH_LISTEN=0.0.0.0:3000
EXPOSE 3000
# The Docker socket is usually root's: run as root when it is mounted, or give this user its
# group (`group_add` in compose, `supplementalGroups` in Kubernetes).
USER threadsmith
ENTRYPOINT ["threadsmith"]
CMD ["serve"]
