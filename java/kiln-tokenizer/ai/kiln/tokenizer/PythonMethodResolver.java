package ai.kiln.tokenizer;

import java.beans.FeatureDescriptor;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.Map;
import jinjava.javax.el.ELContext;
import jinjava.javax.el.ELResolver;

/**
 * Lets templates call Python's str methods on strings ({@link PythonStrings}) and
 * {@code dict.get(key, default)}, {@code keys()} and {@code values()} on maps. It only answers
 * method calls it recognizes and leaves everything else to Jinjava's own resolvers.
 */
final class PythonMethodResolver extends ELResolver {
    @Override
    public Object invoke(ELContext context, Object base, Object method, Class<?>[] paramTypes, Object[] params) {
        if (!(method instanceof String name)) {
            return null;
        }
        Object[] args = params == null ? new Object[0] : params;
        if (base instanceof String self && PythonStrings.supports(name, args.length)) {
            context.setPropertyResolved(true);
            return PythonStrings.call(self, name, args);
        }
        if (base instanceof Map<?, ?> map) {
            if (name.equals("get") && (args.length == 1 || args.length == 2)) {
                context.setPropertyResolved(true);
                Object value = map.get(args[0]);
                return value != null || map.containsKey(args[0]) ? value : (args.length == 2 ? args[1] : null);
            }
            if (name.equals("keys") && args.length == 0) {
                context.setPropertyResolved(true);
                return new ArrayList<>(map.keySet());
            }
            if (name.equals("values") && args.length == 0) {
                context.setPropertyResolved(true);
                return new ArrayList<>(map.values());
            }
        }
        return null;
    }

    @Override
    public Class<?> getCommonPropertyType(ELContext context, Object base) {
        return null;
    }

    @Override
    public Iterator<FeatureDescriptor> getFeatureDescriptors(ELContext context, Object base) {
        return null;
    }

    @Override
    public Class<?> getType(ELContext context, Object base, Object property) {
        return null;
    }

    @Override
    public Object getValue(ELContext context, Object base, Object property) {
        return null;
    }

    @Override
    public boolean isReadOnly(ELContext context, Object base, Object property) {
        return true;
    }

    @Override
    public void setValue(ELContext context, Object base, Object property, Object value) {
        // Not resolved here: Jinjava's resolvers handle assignment.
    }
}
