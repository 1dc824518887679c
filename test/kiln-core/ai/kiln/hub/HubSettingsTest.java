package ai.kiln.hub;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The environment variables read as huggingface_hub reads them, with its defaults and precedence. */
class HubSettingsTest {

    @TempDir
    Path home;

    @Test
    void defaultsAreTheHubAndTheUsersCache() {
        HubSettings s = HubSettings.fromEnvironment(Map.of("HF_TOKEN_PATH", home.resolve("none").toString()));
        assertEquals(URI.create("https://huggingface.co"), s.endpoint());
        assertEquals(Path.of(System.getProperty("user.home"), ".cache", "huggingface", "hub"), s.cacheDir());
        assertNull(s.token());
        assertFalse(s.offline());
        assertEquals(Duration.ofSeconds(10), s.downloadTimeout());
    }

    @Test
    void theDownloadTimeoutIsSecondsAndABadOneIsRefusedByName() {
        assertEquals(Duration.ofMillis(2500),
                HubSettings.fromEnvironment(Map.of("HF_HUB_DOWNLOAD_TIMEOUT", "2.5")).downloadTimeout());
        for (String bad : new String[] {"0", "-3", "soon"}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> HubSettings.fromEnvironment(Map.of("HF_HUB_DOWNLOAD_TIMEOUT", bad)));
            assertTrue(e.getMessage().contains("HF_HUB_DOWNLOAD_TIMEOUT"), e.getMessage());
        }
    }

    @Test
    void hfHubCacheOverridesHfHomeWhichOverridesXdgCacheHome() {
        assertEquals(Path.of("/x/huggingface/hub"), HubSettings.fromEnvironment(Map.of("XDG_CACHE_HOME", "/x")).cacheDir());
        assertEquals(Path.of("/h/hub"),
                HubSettings.fromEnvironment(Map.of("XDG_CACHE_HOME", "/x", "HF_HOME", "/h")).cacheDir());
        assertEquals(Path.of("/c"),
                HubSettings.fromEnvironment(Map.of("HF_HOME", "/h", "HF_HUB_CACHE", "/c")).cacheDir());
    }

    @Test
    void endpointTokenAndOfflineComeFromTheirVariables() throws IOException {
        HubSettings s = HubSettings.fromEnvironment(Map.of("HF_ENDPOINT", "http://mirror.local:8080/",
                "HF_TOKEN", "hf_abc", "HF_HUB_OFFLINE", "1"));
        assertEquals(URI.create("http://mirror.local:8080"), s.endpoint());
        assertEquals("hf_abc", s.token());
        assertTrue(s.offline());
        assertTrue(HubSettings.fromEnvironment(Map.of("HF_HUB_OFFLINE", "TRUE")).offline());
        assertFalse(HubSettings.fromEnvironment(Map.of("HF_HUB_OFFLINE", "0")).offline());

        // Where HF_TOKEN is unset, the file huggingface-cli login writes, HF_HOME/token.
        Files.writeString(home.resolve("token"), "hf_from_file\n");
        assertEquals("hf_from_file", HubSettings.fromEnvironment(Map.of("HF_HOME", home.toString())).token());
    }

    @Test
    void fileServerModelsAreCachedUnderKilnCacheElseXdgCacheHomeElseTheUsersCache() {
        assertEquals(Path.of("/k", "models"), ModelLocator.defaultHttpCacheDir(Map.of("KILN_CACHE", "/k",
                "XDG_CACHE_HOME", "/x")));
        assertEquals(Path.of("/x", "kiln", "models"), ModelLocator.defaultHttpCacheDir(Map.of("XDG_CACHE_HOME", "/x")));
        assertEquals(Path.of(System.getProperty("user.home"), ".cache", "kiln", "models"),
                ModelLocator.defaultHttpCacheDir(Map.of()));
    }
}
