# Multi-stage build of the single amas binary into a small static image.
# The image does not carry PostgreSQL: point it at one with AMAS_DATABASE_URL
# (docker-compose.yml runs TimescaleDB beside it).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/amas-eye/amas/app.Version=${VERSION}" -o /out/amas ./cmd/amas

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/amas /usr/local/bin/amas
EXPOSE 8080 4242 4317 4318
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/amas"]
CMD ["serve"]
