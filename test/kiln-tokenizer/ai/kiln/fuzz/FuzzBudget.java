package ai.kiln.fuzz;

import net.jqwik.api.lifecycle.AroundPropertyHook;
import net.jqwik.api.lifecycle.PropagationMode;
import net.jqwik.api.lifecycle.PropertyAttributes;
import net.jqwik.api.lifecycle.PropertyExecutionResult;
import net.jqwik.api.lifecycle.PropertyExecutor;
import net.jqwik.api.lifecycle.PropertyLifecycleContext;

/**
 * Gives every fuzz property of a class ({@code @AddLifecycleHook(FuzzBudget.class)}) the tries and
 * the seed of {@link Fuzzing}, so that the budget is one system property rather than a number on
 * each annotation (which this overrides).
 */
public final class FuzzBudget implements AroundPropertyHook {

    @Override
    public PropertyExecutionResult aroundProperty(PropertyLifecycleContext context, PropertyExecutor property) {
        // NOTE: unconditionally: jqwik has already filled in its own defaults (1000 tries) here.
        PropertyAttributes attributes = context.attributes();
        attributes.setTries(Fuzzing.TRIES);
        if (!Fuzzing.SEED.equals("random")) {
            attributes.setSeed(Fuzzing.SEED);
        }
        return property.execute();
    }

    /** Registered on a class, it must reach the class's properties. */
    @Override
    public PropagationMode propagateTo() {
        return PropagationMode.ALL_DESCENDANTS;
    }
}
