package ai.kiln.progress;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** Runs under a second print nothing; longer ones print progress lines and a closing summary. */
class ByteProgressTest {

    @Test
    void quickLoadsAreSilentAndSlowOnesReport() throws InterruptedException {
        ByteArrayOutputStream quick = new ByteArrayOutputStream();
        ByteProgress fast = new ByteProgress("loading weights", "loaded %.2f GB of weights", 1000,
                new PrintStream(quick, true, StandardCharsets.UTF_8), false);
        fast.advance(1000);
        fast.finish();
        assertEquals("", quick.toString(StandardCharsets.UTF_8));

        ByteArrayOutputStream log = new ByteArrayOutputStream();
        ByteProgress slow = new ByteProgress("loading weights", "loaded %.2f GB of weights", 4_000_000_000L,
                new PrintStream(log, true, StandardCharsets.UTF_8), false);
        Thread.sleep(1100);
        for (int i = 0; i < 4; i++) {
            slow.advance(1_000_000_000L);
        }
        slow.finish();
        String text = log.toString(StandardCharsets.UTF_8);
        assertTrue(text.contains(" 25% 1.0/4.0 GB") && text.contains("100% 4.0/4.0 GB"), text);
        assertTrue(text.contains("loaded 4.00 GB of weights in "), text);
        assertEquals(5, text.lines().count(), text);
        assertTrue(text.startsWith("loading weights [#######"), text);
    }

    @Test
    void withoutAStreamNothingIsPrinted() throws InterruptedException {
        ByteProgress silent = new ByteProgress("downloading", "downloaded %.2f GB", 10, null, false);
        Thread.sleep(1100);
        silent.advance(10); // would print were there a stream
        silent.finish();
    }
}
