# The rollout image, for those with a registry. Without one, `threadsmith image build` makes the
# same image offline (debootstrap + docker import).
#
#   threadsmith image build --dockerfile deploy/rollout.Dockerfile
#
# Add your toolchains (cargo, node, python…) in an image FROM this one and name it in the
# repository's config (`image = "…"`).
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends git ca-certificates procps patch diffutils less xz-utils \
 && rm -rf /var/lib/apt/lists/* \
 && useradd -m -u 1000 -U -s /bin/bash agent \
 && mkdir -p /workspace /seed
ENV HOME=/tmp LANG=C.UTF-8
WORKDIR /workspace
USER 1000:1000
LABEL dev.threadsmith.image=rollout
CMD ["sleep", "infinity"]
