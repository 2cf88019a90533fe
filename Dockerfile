# The exporter, small and non-root. No credentials are baked in: give them at run time (environment,
# a mounted ~/.aws, or an instance/task role). Without a config it runs the demo (see CMD).
FROM python:3.11-slim AS build
WORKDIR /src
# Every file pyproject.toml names (readme, license-files): tests/test_install.py builds from exactly these.
COPY pyproject.toml README.md LICENSE ./
COPY exporter ./exporter
RUN pip install --no-cache-dir --prefix=/install ".[demo]"

FROM python:3.11-slim
# glibc malloc instead of pymalloc: under connection churn RSS levels off (docs/performance.md).
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PYTHONMALLOC=malloc
COPY --from=build /install /usr/local
RUN useradd --system --uid 10001 --home-dir /var/lib/aws-vpn-exporter --create-home exporter
USER 10001
WORKDIR /var/lib/aws-vpn-exporter
EXPOSE 9798
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s \
  CMD ["aws-vpn-exporter", "healthcheck"]
ENTRYPOINT ["aws-vpn-exporter"]
CMD ["--demo", "--web.listen-address", "0.0.0.0:9798"]
