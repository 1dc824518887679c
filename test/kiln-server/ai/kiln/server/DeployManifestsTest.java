package ai.kiln.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.kiln.api.EngineMetrics;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/**
 * The Kubernetes manifests under deploy/, as {@code kubectl kustomize} renders each overlay, agree
 * with the server they run: the container's arguments parse as {@code kiln serve}'s, the probes
 * hit routes that answer as a probe needs (checked on a live, still-loading server), the pod's
 * termination grace outlasts the preStop sleep and the drain, the API key comes from a Secret
 * through the variable kiln serve reads, the model cache is mounted where $HF_HOME points, the GPU
 * overlays ask for a GPU, and the autoscaler and the endpoint picker name metrics /metrics serves.
 */
class DeployManifestsTest {

    static final List<String> SERVER_OVERLAYS = List.of("single-gpu", "pool", "inference-pool");
    static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());

    /**
     * What the drain does after the grace period, before the process exits: up to 5 s for the
     * cancelled requests to end ({@link KilnServer#drain}) and 1 s for the engine to close
     * (ServeCommand's engine shutdown grace).
     */
    static final int DRAIN_TAIL_SECONDS = 5 + 1;

    static String kubectl;

    @BeforeAll
    static void findKubectl() {
        for (String dir : System.getenv().getOrDefault("PATH", "/usr/bin").split(":")) {
            if (!dir.isEmpty() && Files.isExecutable(Path.of(dir, "kubectl"))) {
                kubectl = Path.of(dir, "kubectl").toString();
                break;
            }
        }
        Assumptions.assumeTrue(kubectl != null,
                "kubectl is not on the PATH: the deploy/ overlays are not rendered nor checked");
    }

    @Test
    void theServerContainerMatchesKilnServe() throws Exception {
        for (String overlay : SERVER_OVERLAYS) {
            List<JsonNode> docs = render(overlay);
            JsonNode pod = find(docs, "Deployment", "kiln").at("/spec/template");
            JsonNode container = pod.at("/spec/containers/0");
            ServeCommand serve = parseServe(container);
            String where = overlay + ": ";

            assertEquals("0.0.0.0", serve.host, where + "a pod must bind its own IP, not loopback");
            JsonNode http = namedPort(container, "http");
            assertEquals(serve.port, http.get("containerPort").asInt(), where + "containerPort vs --port");
            assertEquals(String.valueOf(serve.port), pod.at("/metadata/annotations/prometheus.io~1port").asText(), where);
            assertEquals("true", pod.at("/metadata/annotations/prometheus.io~1scrape").asText(), where);
            for (String probe : new String[] {"startupProbe", "livenessProbe", "readinessProbe"}) {
                assertEquals(serve.port, portNumber(container, container.at("/" + probe + "/httpGet/port")),
                        where + probe + " port");
            }
            assertEquals(ServeCommand.API_KEY_ENV, env(container, ServeCommand.API_KEY_ENV).get("name").asText());
            assertTrue(env(container, ServeCommand.API_KEY_ENV).at("/valueFrom/secretKeyRef/name").isTextual(),
                    where + "the API key must come from a Secret");
            assertTrue(env(container, ServeCommand.API_KEY_ENV).at("/valueFrom/secretKeyRef/optional").isMissingNode(),
                    where + "an optional key would serve without authentication when the Secret is missing");

            String hfHome = env(container, "HF_HOME").get("value").asText();
            String volume = null;
            for (JsonNode mount : container.get("volumeMounts")) {
                if (mount.get("mountPath").asText().equals(hfHome)) {
                    volume = mount.get("name").asText();
                }
            }
            assertNotNull(volume, where + "no volume mounted at $HF_HOME " + hfHome);
            assertTrue(volumeNamed(pod, volume) != null, where + "volume " + volume + " is not defined");

            JsonNode service = find(docs, "Service", "kiln");
            assertEquals(serve.port, portNumber(container, service.at("/spec/ports/0/targetPort")), where);
            assertSelects(service.at("/spec/selector"), pod, where + "the Service");
        }
    }

    @Test
    void theDrainFitsInTheTerminationGracePeriod() throws Exception {
        for (String overlay : SERVER_OVERLAYS) {
            JsonNode pod = find(render(overlay), "Deployment", "kiln").at("/spec/template/spec");
            JsonNode container = pod.at("/containers/0");
            ServeCommand serve = parseServe(container);
            int preStopSleep = container.at("/lifecycle/preStop/sleep/seconds").asInt(-1);
            assertTrue(preStopSleep > 0, overlay + ": no preStop sleep before SIGTERM starts the drain");
            int termination = pod.get("terminationGracePeriodSeconds").asInt();
            assertTrue(termination >= preStopSleep + serve.gracePeriodSeconds + DRAIN_TAIL_SECONDS,
                    overlay + ": terminationGracePeriodSeconds " + termination + " < preStop " + preStopSleep
                            + " + --grace-period-seconds " + serve.gracePeriodSeconds + " + " + DRAIN_TAIL_SECONDS);
        }
    }

    /** The probe paths against a server that listens but has no model yet: what the kubelet meets first. */
    @Test
    void theProbesHitRoutesThatAnswerAsProbesNeed() throws Exception {
        KilnServer server = new KilnServer(ServerHarness.serverOptions(), new PrintStream(new ByteArrayOutputStream()))
                .start();
        try {
            for (String overlay : SERVER_OVERLAYS) {
                JsonNode container = find(render(overlay), "Deployment", "kiln").at("/spec/template/spec/containers/0");
                String where = overlay + ": ";
                // Liveness must pass while the model loads, or the kubelet would restart every load.
                assertEquals(200, status(server, container.at("/livenessProbe/httpGet/path").asText()), where);
                // Readiness and startup must fail until the model is served.
                assertEquals(503, status(server, container.at("/readinessProbe/httpGet/path").asText()), where);
                assertEquals(503, status(server, container.at("/startupProbe/httpGet/path").asText()), where);
                JsonNode startup = container.get("startupProbe");
                int startupSeconds = startup.get("periodSeconds").asInt() * startup.get("failureThreshold").asInt();
                assertTrue(startupSeconds >= 20 * 60, where + "a startup probe of " + startupSeconds
                        + " s restarts a model that is still downloading or loading");
                String scrapePath = find(render(overlay), "Deployment", "kiln")
                        .at("/spec/template/metadata/annotations/prometheus.io~1path").asText();
                assertEquals(200, status(server, scrapePath), where + "the scrape path");
            }
            server.drain(Duration.ofSeconds(1));
            JsonNode container = find(render("pool"), "Deployment", "kiln").at("/spec/template/spec/containers/0");
            assertEquals(200, status(server, container.at("/livenessProbe/httpGet/path").asText()),
                    "a draining server must stay alive for its grace period");
            assertEquals(503, status(server, container.at("/readinessProbe/httpGet/path").asText()));
        } finally {
            server.close();
        }
    }

    @Test
    void theGpuOverlaysAskForAGpuAndTheCudaBackend() throws Exception {
        for (String overlay : SERVER_OVERLAYS) {
            JsonNode container = find(render(overlay), "Deployment", "kiln").at("/spec/template/spec/containers/0");
            assertEquals("1", container.at("/resources/limits/nvidia.com~1gpu").asText(), overlay);
            assertEquals("1", container.at("/resources/requests/nvidia.com~1gpu").asText(), overlay);
            assertEquals("cuda", parseServe(container).engineFlags.device, overlay);
        }
    }

    @Test
    void theSingleGpuServerKeepsItsModelCacheOnAClaim() throws Exception {
        List<JsonNode> docs = render("single-gpu");
        JsonNode deployment = find(docs, "Deployment", "kiln");
        assertEquals(1, deployment.at("/spec/replicas").asInt());
        assertEquals("Recreate", deployment.at("/spec/strategy/type").asText());
        JsonNode pod = deployment.at("/spec/template");
        String hfHome = env(pod.at("/spec/containers/0"), "HF_HOME").get("value").asText();
        String claim = volumeNamed(pod, mountedAt(pod.at("/spec/containers/0"), hfHome))
                .at("/persistentVolumeClaim/claimName").asText();
        assertNotNull(find(docs, "PersistentVolumeClaim", claim));
    }

    @Test
    void theAutoscalerScalesThePoolOnAMetricTheServerServes() throws Exception {
        List<JsonNode> docs = render("pool");
        assertEquals(4, find(docs, "Deployment", "kiln").at("/spec/replicas").asInt());
        JsonNode hpa = find(docs, "HorizontalPodAutoscaler", "kiln");
        assertEquals("autoscaling/v2", hpa.get("apiVersion").asText());
        assertEquals("Deployment", hpa.at("/spec/scaleTargetRef/kind").asText());
        assertEquals("kiln", hpa.at("/spec/scaleTargetRef/name").asText());
        String metric = hpa.at("/spec/metrics/0/pods/metric/name").asText();
        assertEquals("kiln_requests_waiting", metric);
        assertTrue(scrapedNames().contains(metric), metric + " is not among the metrics /metrics serves");
    }

    @Test
    void theInferencePoolSelectsTheServersAndItsPickerReadsTheirGauges() throws Exception {
        List<JsonNode> docs = render("inference-pool");
        JsonNode pod = find(docs, "Deployment", "kiln").at("/spec/template");
        ServeCommand serve = parseServe(pod.at("/spec/containers/0"));
        JsonNode pool = find(docs, "InferencePool", "kiln");
        assertEquals("inference.networking.x-k8s.io/v1alpha2", pool.get("apiVersion").asText());
        assertEquals(serve.port, pool.at("/spec/targetPortNumber").asInt());
        assertSelects(pool.at("/spec/selector"), pod, "the InferencePool");

        String picker = pool.at("/spec/extensionRef/name").asText();
        JsonNode pickerService = find(docs, "Service", picker);
        JsonNode pickerPod = find(docs, "Deployment", picker).at("/spec/template");
        assertSelects(pickerService.at("/spec/selector"), pickerPod, "the picker's Service");
        List<String> args = new ArrayList<>();
        pickerPod.at("/spec/containers/0/args").forEach(a -> args.add(a.asText()));
        assertEquals(pool.at("/metadata/name").asText(), flag(args, "--pool-name"));
        assertEquals(flag(args, "--grpc-port"), pickerService.at("/spec/ports/0/targetPort").asText());
        String waiting = flag(args, "--total-queued-requests-metric");
        String kvUsage = flag(args, "--kv-cache-usage-percentage-metric");
        assertEquals(VllmCompatibleGauges.WAITING, waiting);
        assertEquals(VllmCompatibleGauges.KV_CACHE_USAGE, kvUsage);
        List<String> served = scrapedNames();
        assertTrue(served.contains(waiting) && served.contains(kvUsage), served.toString());

        JsonNode route = find(docs, "HTTPRoute", "kiln");
        assertEquals("InferencePool", route.at("/spec/rules/0/backendRefs/0/kind").asText());
        assertEquals("kiln", route.at("/spec/rules/0/backendRefs/0/name").asText());
    }

    // ---- rendering and reading the YAML

    static List<JsonNode> render(String overlay) throws IOException, InterruptedException {
        Process kustomize = new ProcessBuilder(kubectl, "kustomize", "deploy/overlays/" + overlay)
                .redirectErrorStream(false).start();
        CompletableFuture<byte[]> err = CompletableFuture.supplyAsync(() -> {
            try {
                return kustomize.getErrorStream().readAllBytes();
            } catch (IOException e) {
                return e.toString().getBytes(StandardCharsets.UTF_8);
            }
        });
        byte[] out = kustomize.getInputStream().readAllBytes();
        assertTrue(kustomize.waitFor(60, TimeUnit.SECONDS), "kubectl kustomize did not finish");
        assertEquals(0, kustomize.exitValue(),
                "kubectl kustomize deploy/overlays/" + overlay + ": " + new String(err.join(), StandardCharsets.UTF_8));
        List<JsonNode> docs = new ArrayList<>();
        try (var parser = YAML.getFactory().createParser(out)) {
            YAML.readValues(parser, JsonNode.class).forEachRemaining(d -> {
                if (d != null && !d.isNull()) {
                    docs.add(d);
                }
            });
        }
        return docs;
    }

    static JsonNode find(List<JsonNode> docs, String kind, String name) {
        for (JsonNode doc : docs) {
            if (kind.equals(doc.path("kind").asText()) && name.equals(doc.at("/metadata/name").asText())) {
                return doc;
            }
        }
        throw new AssertionError("no " + kind + " named " + name + " rendered");
    }

    /** The container's command line parsed by kiln serve's own options: unknown flags fail here. */
    static ServeCommand parseServe(JsonNode container) {
        assertEquals("kiln", container.at("/command/0").asText());
        List<String> args = new ArrayList<>();
        container.get("args").forEach(a -> args.add(a.asText()));
        assertEquals("serve", args.get(0));
        ServeCommand serve = new ServeCommand();
        new CommandLine(serve).parseArgs(args.subList(1, args.size()).toArray(String[]::new));
        return serve;
    }

    static String flag(List<String> args, String name) {
        int at = args.indexOf(name);
        assertTrue(at >= 0 && at + 1 < args.size(), name + " missing from " + args);
        return args.get(at + 1);
    }

    static JsonNode namedPort(JsonNode container, String name) {
        for (JsonNode port : container.get("ports")) {
            if (name.equals(port.path("name").asText())) {
                return port;
            }
        }
        throw new AssertionError("no container port named " + name);
    }

    /** A port given by number or by the container port's name. */
    static int portNumber(JsonNode container, JsonNode port) {
        return port.isInt() ? port.asInt() : namedPort(container, port.asText()).get("containerPort").asInt();
    }

    static JsonNode env(JsonNode container, String name) {
        for (JsonNode e : container.get("env")) {
            if (name.equals(e.get("name").asText())) {
                return e;
            }
        }
        throw new AssertionError("no env " + name);
    }

    static String mountedAt(JsonNode container, String path) {
        for (JsonNode mount : container.get("volumeMounts")) {
            if (mount.get("mountPath").asText().equals(path)) {
                return mount.get("name").asText();
            }
        }
        throw new AssertionError("nothing mounted at " + path);
    }

    static JsonNode volumeNamed(JsonNode podTemplate, String name) {
        for (JsonNode v : podTemplate.at("/spec/volumes")) {
            if (name.equals(v.get("name").asText())) {
                return v;
            }
        }
        return null;
    }

    static void assertSelects(JsonNode selector, JsonNode podTemplate, String what) {
        assertTrue(selector.size() > 0, what + " selects nothing");
        for (Map.Entry<String, JsonNode> label : selector.properties()) {
            assertEquals(label.getValue().asText(), podTemplate.at("/metadata/labels").path(label.getKey()).asText(),
                    what + " selector " + label.getKey());
        }
    }

    // ---- the server's side

    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();

    private int status(KilnServer server, String path) throws Exception {
        return http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + server.port() + path))
                .timeout(Duration.ofSeconds(30)).GET().build(), HttpResponse.BodyHandlers.discarding()).statusCode();
    }

    /** The metric names a served engine's /metrics gives (sample lines' names). */
    static List<String> scrapedNames() {
        ServerMetrics metrics = new ServerMetrics();
        metrics.engineGauges("m", () -> new EngineMetrics(0, 0, 0, 1, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0));
        List<String> names = new ArrayList<>();
        for (String line : new String(metrics.scrape(), StandardCharsets.UTF_8).split("\n")) {
            if (!line.startsWith("#") && !line.isEmpty()) {
                names.add(line.split("[{ ]", 2)[0]);
            }
        }
        return names;
    }
}
