package dev.dmscdc.opensearch;

import org.opensearch.analysis.common.CommonAnalysisPlugin;
import org.opensearch.common.settings.Settings;
import org.opensearch.env.Environment;
import org.opensearch.http.HttpServerTransport;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.plugins.Plugin;
import org.opensearch.transport.Netty4Plugin;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collection;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * A real single-node OpenSearch (no security manager, no bootstrap checks), in-process, with the
 * Netty4 HTTP/transport module and the common analysis module loaded from the classpath.
 *
 * <pre>
 * java -Xms512m -Xmx512m -cp 'target/classes:target/lib/*' dev.dmscdc.opensearch.LocalNode \
 *      --http-port 9250 --transport-port 9350 --home /tmp/os-home [--stop-on-stdin-eof] [-E key=value ...]
 * </pre>
 *
 * Prints {@code READY http://127.0.0.1:PORT} on stdout once the node has started (PORT is the bound
 * port, so {@code --http-port 0} works). Logs go to stderr. Stops cleanly on SIGTERM/SIGINT and, with
 * {@code --stop-on-stdin-eof}, when stdin closes.
 */
public final class LocalNode extends Node {

    private static final List<Class<? extends Plugin>> PLUGINS = List.of(Netty4Plugin.class, CommonAnalysisPlugin.class);

    private LocalNode(Environment env, Collection<Class<? extends Plugin>> plugins) {
        super(env, plugins, true);
    }

    public static void main(String[] args) throws Exception {
        String httpPort = "9250";
        String transportPort = "9350";
        Path home = null;
        boolean stopOnStdinEof = false;
        Settings.Builder extra = Settings.builder();
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--http-port" -> httpPort = args[++i];
                case "--transport-port" -> transportPort = args[++i];
                case "--home" -> home = Path.of(args[++i]).toAbsolutePath();
                case "--stop-on-stdin-eof" -> stopOnStdinEof = true;
                case "-E" -> {
                    String kv = args[++i];
                    int eq = kv.indexOf('=');
                    if (eq <= 0) throw new IllegalArgumentException("-E expects key=value, got " + kv);
                    extra.put(kv.substring(0, eq), kv.substring(eq + 1));
                }
                default -> throw new IllegalArgumentException("unknown argument: " + args[i]);
            }
        }
        if (home == null) {
            home = Files.createTempDirectory("opensearch-local-");
        }
        for (String d : List.of("config", "data", "logs", "plugins", "modules")) {
            Files.createDirectories(home.resolve(d));
        }

        Settings settings = Settings.builder()
            .put("cluster.name", "local")
            .put("node.name", "local-node")
            .put("path.home", home.toString())
            .put("path.data", home.resolve("data").toString())
            .put("path.logs", home.resolve("logs").toString())
            .put("network.host", "127.0.0.1")
            .put("http.port", httpPort)
            .put("transport.port", transportPort)
            .put("discovery.type", "single-node")
            .put("cluster.routing.allocation.disk.threshold_enabled", false)
            .put("action.auto_create_index", true)
            .put(extra.build())
            .build();

        // Logging: log4j picks up log4j2.properties from the classpath (stderr). LogConfigurator is not
        // used: its configureWithoutConfig() installs an ERROR-only root logger that hides it.
        Environment env = InternalSettingsPreparer.prepareEnvironment(settings, Collections.emptyMap(), null, () -> "local-node");

        LocalNode node = new LocalNode(env, PLUGINS);
        // OpenSearch's own threads are daemons: keep the JVM alive until shutdown, like Bootstrap does.
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
                node.awaitClose(10, TimeUnit.SECONDS);
            } catch (IOException | InterruptedException e) {
                e.printStackTrace();
            } finally {
                stopped.countDown();
            }
        }, "opensearch-local-shutdown"));

        node.start();
        int port = node.injector().getInstance(HttpServerTransport.class).boundAddress().publishAddress().getPort();
        System.out.println("READY http://127.0.0.1:" + port);
        System.out.flush();

        if (stopOnStdinEof) {
            Thread watcher = new Thread(() -> {
                try (InputStream in = System.in) {
                    while (in.read() != -1) {
                        // discard
                    }
                } catch (IOException ignored) {
                    // treat as EOF
                }
                System.exit(0);
            }, "opensearch-local-stdin");
            watcher.setDaemon(true);
            watcher.start();
        }
        stopped.await();
    }
}
