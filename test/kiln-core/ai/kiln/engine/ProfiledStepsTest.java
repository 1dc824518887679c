package ai.kiln.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

/** -Dkiln.profileSteps: a range of engine steps, or one step, or nothing; anything else is refused by name. */
class ProfiledStepsTest {

    @Test
    void rangesParse() {
        assertArrayEquals(new long[] {16, 18}, StepLoop.profiledSteps("16-18"));
        assertArrayEquals(new long[] {7, 7}, StepLoop.profiledSteps("7"));
        assertNull(StepLoop.profiledSteps(null));
        assertNull(StepLoop.profiledSteps(" "));
        for (String bad : new String[] {"5-3", "-1", "a-b", "1-2-3", "x"}) {
            assertThrows(IllegalArgumentException.class, () -> StepLoop.profiledSteps(bad), bad);
        }
    }
}
