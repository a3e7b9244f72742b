// The OTel JS SDK as a Node.js app sets it up: a NodeTracerProvider exporting over the
// protocol in OTEL_EXPORTER_OTLP_PROTOCOL (grpc, http/protobuf or http/json) to the collector
// at OTEL_EXPORTER_OTLP_ENDPOINT, through a batch processor, or one request a span when
// SPAN_PROCESSOR=simple (the spans of one call then arrive in separate requests).
import { BatchSpanProcessor, NodeTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-node';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { OTLPTraceExporter as GrpcExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as ProtobufExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http';

export function startTracing(service) {
  const protocol = process.env.OTEL_EXPORTER_OTLP_PROTOCOL;
  const endpoint = process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
  const exporter = protocol === 'grpc' ? new GrpcExporter({ url: endpoint })
    : protocol === 'http/protobuf' ? new ProtobufExporter({ url: `${endpoint}/v1/traces` })
      : new JsonExporter({ url: `${endpoint}/v1/traces` });
  const processor = process.env.SPAN_PROCESSOR === 'simple' ? new SimpleSpanProcessor(exporter)
    : new BatchSpanProcessor(exporter);
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': service }),
    spanProcessors: [processor],
  });
  provider.register();
  return provider;
}
