// The published browser SDKs, configured to send to a segstream collector and nothing else.
// `npm run build` bundles this file with the SDKs into dist/segstream-sdk.js, which exposes
// window.segstreamSDK = { loadSegment, loadRudder } (see README, "Pointing your SDKs at segstream").
import { AnalyticsBrowser } from "@segment/analytics-next";
import { RudderAnalytics } from "@rudderstack/analytics-js/bundled";

/**
 * analytics-next (Segment's analytics.js) sending to the collector at `collector`
 * (e.g. "http://127.0.0.1:8088"): it posts to {collector}/v1/t, /v1/p, /v1/i...
 * The settings Segment's CDN would serve are given here, so it fetches none,
 * and its own usage metrics (sampleRate 0) are not sent.
 */
export function loadSegment(writeKey, collector) {
  const url = new URL(collector);
  const segmentio = { apiKey: writeKey, apiHost: `${url.host}/v1`, protocol: url.protocol.replace(":", "") };
  return AnalyticsBrowser.load({
    writeKey,
    cdnSettings: { integrations: { "Segment.io": segmentio }, metrics: { sampleRate: 0 } },
  });
}

/**
 * RudderStack's JavaScript SDK (v3, plugins bundled) sending to the collector as its
 * data plane: it posts to {collector}/v1/page, /v1/track... The source configuration its
 * control plane would serve is given here (no destinations), so it fetches none.
 */
export function loadRudder(writeKey, collector) {
  const rudder = new RudderAnalytics();
  rudder.load(writeKey, collector, {
    getSourceConfig: () => ({
      source: { id: "segstream", name: "segstream", workspaceId: "segstream", enabled: true, config: {}, destinations: [] },
    }),
    polyfillIfRequired: false,
  });
  return rudder;
}

window.segstreamSDK = { loadSegment, loadRudder };
