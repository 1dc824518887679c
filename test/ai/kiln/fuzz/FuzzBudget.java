package ai.kiln.fuzz;

import net.jqwik.api.lifecycle.AroundPropertyHook;
import net.jqwik.api.lifecycle.PropertyAttributes;
import net.jqwik.api.lifecycle.PropertyExecutionResult;
import net.jqwik.api.lifecycle.PropertyExecutor;
import net.jqwik.api.lifecycle.PropertyLifecycleContext;

/**
 * Gives every fuzz property of a class ({@code @AddLifecycleHook(FuzzBudget.class)}) the tries and
 * the seed of {@link Fuzzing}, so that the budget is one system property rather than a number on
 * each annotation. A property that names its own tries or seed keeps them.
 */
public final class FuzzBudget implements AroundPropertyHook {

    @Override
    public PropertyExecutionResult aroundProperty(PropertyLifecycleContext context, PropertyExecutor property) {
        PropertyAttributes attributes = context.attributes();
        // NOTE: jqwik reports an annotation's unset tries as 0 and an unset seed as "".
        if (attributes.tries().filter(tries -> tries > 0).isEmpty()) {
            attributes.setTries(Fuzzing.TRIES);
        }
        if (attributes.seed().filter(seed -> !seed.isEmpty()).isEmpty() && !Fuzzing.SEED.equals("random")) {
            attributes.setSeed(Fuzzing.SEED);
        }
        return property.execute();
    }

    /** Outside jqwik's own defaults hook, which would otherwise set the tries first. */
    @Override
    public int aroundPropertyProximity() {
        return -100;
    }
}
