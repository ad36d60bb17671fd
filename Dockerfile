# The operator image: a static binary on distroless nonroot, no shell.
#   make docker-build IMG=registry.example.com/tandem-operator:v0.1.0
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY api/ api/
COPY cmd/ cmd/
COPY internal/ internal/
ARG TARGETOS=linux
ARG TARGETARCH=amd64
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath -ldflags "-s -w" -o /out/tandem-operator ./cmd/tandem-operator

FROM gcr.io/distroless/static:nonroot
COPY --from=build /out/tandem-operator /tandem-operator
USER 65532:65532
ENTRYPOINT ["/tandem-operator"]
