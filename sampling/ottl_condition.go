package sampling

import (
	"context"
	"errors"
	"fmt"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/ottl"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/ottl/contexts/ottlspan"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/ottl/contexts/ottlspanevent"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/ottl/ottlfuncs"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/zap"
)

// OTTLConditionConfig keeps traces with a span, or a span event, for which
// one of the OTTL conditions holds, as contrib's ottl_condition policy does.
// It needs the trace's spans as pdata, which costs a decode per trace.
type OTTLConditionConfig struct {
	// ErrorMode is what a condition that fails to evaluate does: propagate
	// (the policy answers NotSampled for the trace), ignore or silent (the
	// condition counts as false and evaluation goes on). Empty behaves like
	// silent, as in contrib.
	ErrorMode ottl.ErrorMode `mapstructure:"error_mode"`
	// SpanConditions are evaluated in the span context: `attributes[...]`
	// means `span.attributes[...]`; `resource.` and `scope.` paths work.
	SpanConditions []string `mapstructure:"span"`
	// SpanEventConditions are evaluated in the span event context.
	SpanEventConditions []string `mapstructure:"spanevent"`
}

// Validate implements the config validator: it parses every condition.
func (c *OTTLConditionConfig) Validate() error {
	switch c.ErrorMode {
	case "", ottl.IgnoreError, ottl.SilentError, ottl.PropagateError:
	default:
		return fmt.Errorf("error_mode: unknown error mode %q (want ignore, silent or propagate)", c.ErrorMode)
	}
	if len(c.SpanConditions) == 0 && len(c.SpanEventConditions) == 0 {
		return errors.New("span: set span and/or spanevent conditions (expected at least one OTTL condition to filter on)")
	}
	for i, cond := range c.SpanConditions {
		if _, err := parseSpanConditions([]string{cond}, c.ErrorMode); err != nil {
			return fmt.Errorf("span::%d: %w", i, err)
		}
	}
	for i, cond := range c.SpanEventConditions {
		if _, err := parseSpanEventConditions([]string{cond}, c.ErrorMode); err != nil {
			return fmt.Errorf("spanevent::%d: %w", i, err)
		}
	}
	return nil
}

// ottlSettings are the telemetry settings the OTTL parser and condition
// sequences log with. The policy builder has no logger, so evaluation
// errors in ignore mode are not logged (ignore behaves like silent).
func ottlSettings() component.TelemetrySettings {
	return component.TelemetrySettings{
		Logger:         zap.NewNop(),
		TracerProvider: tracenoop.NewTracerProvider(),
		MeterProvider:  metricnoop.NewMeterProvider(),
		Resource:       pcommon.NewResource(),
	}
}

// parseSpanConditions is contrib's filterottl.NewBoolExprForSpanWithPathContextNames
// with filterottl.StandardSpanFuncs: the standard converters plus IsRootSpan,
// conditions without a path context rewritten to the span context, ORed.
func parseSpanConditions(conds []string, mode ottl.ErrorMode) (*ottl.ConditionSequence[*ottlspan.TransformContext], error) {
	set := ottlSettings()
	funcs := ottlfuncs.StandardConverters[*ottlspan.TransformContext]()
	isRoot := ottlfuncs.NewIsRootSpanFactory()
	funcs[isRoot.Name()] = isRoot
	parser, err := ottlspan.NewParser(funcs, set, ottlspan.EnablePathContextNames())
	if err != nil {
		return nil, err
	}
	return parseWithContext(ottlspan.ContextName, parser, conds, set, func(parsed []*ottl.Condition[*ottlspan.TransformContext]) ottl.ConditionSequence[*ottlspan.TransformContext] {
		return ottlspan.NewConditionSequence(parsed, set, ottlspan.WithConditionSequenceErrorMode(mode))
	})
}

// parseSpanEventConditions is contrib's
// filterottl.NewBoolExprForSpanEventWithPathContextNames with the standard
// converters.
func parseSpanEventConditions(conds []string, mode ottl.ErrorMode) (*ottl.ConditionSequence[*ottlspanevent.TransformContext], error) {
	set := ottlSettings()
	parser, err := ottlspanevent.NewParser(ottlfuncs.StandardConverters[*ottlspanevent.TransformContext](), set, ottlspanevent.EnablePathContextNames())
	if err != nil {
		return nil, err
	}
	return parseWithContext(ottlspanevent.ContextName, parser, conds, set, func(parsed []*ottl.Condition[*ottlspanevent.TransformContext]) ottl.ConditionSequence[*ottlspanevent.TransformContext] {
		return ottlspanevent.NewConditionSequence(parsed, set, ottlspanevent.WithConditionSequenceErrorMode(mode))
	})
}

// parseWithContext is filterottl's newBoolExprWithPathContextNames: a
// one-context parser collection, so that conditions without an explicit
// path context get contextName's.
func parseWithContext[K any](
	contextName string,
	parser ottl.Parser[K],
	conds []string,
	set component.TelemetrySettings,
	sequence func([]*ottl.Condition[K]) ottl.ConditionSequence[K],
) (*ottl.ConditionSequence[K], error) {
	pc, err := ottl.NewParserCollection(
		set,
		ottl.EnableParserCollectionModifiedPathsLogging[*ottl.ConditionSequence[K]](true),
		ottl.WithParserCollectionContext(
			contextName,
			&parser,
			ottl.WithConditionConverter(func(_ *ottl.ParserCollection[*ottl.ConditionSequence[K]], _ ottl.ConditionsGetter, parsed []*ottl.Condition[K]) (*ottl.ConditionSequence[K], error) {
				cs := sequence(parsed)
				return &cs, nil
			}),
		),
	)
	if err != nil {
		return nil, err
	}
	return pc.ParseConditionsWithContext(contextName, ottl.NewConditionsGetter(conds), true)
}

type ottlCondition struct {
	span      *ottl.ConditionSequence[*ottlspan.TransformContext]
	spanEvent *ottl.ConditionSequence[*ottlspanevent.TransformContext]
}

func newOTTLCondition(settings any, b *builder) (evaluator, error) {
	c := settings.(*OTTLConditionConfig)
	if len(c.SpanConditions) == 0 && len(c.SpanEventConditions) == 0 {
		return nil, errors.New("span: expected at least one OTTL condition to filter on")
	}
	var (
		p   ottlCondition
		err error
	)
	if len(c.SpanConditions) > 0 {
		if p.span, err = parseSpanConditions(c.SpanConditions, c.ErrorMode); err != nil {
			return nil, fmt.Errorf("span: %w", err)
		}
	}
	if len(c.SpanEventConditions) > 0 {
		if p.spanEvent, err = parseSpanEventConditions(c.SpanEventConditions, c.ErrorMode); err != nil {
			return nil, fmt.Errorf("spanevent: %w", err)
		}
	}
	b.NeedSpans()
	return p, nil
}

// Evaluate walks the spans as contrib's ottlConditionFilter does: per span,
// the span conditions, then the span conditions of each of its events; the
// first that holds keeps the trace (probability 1). An evaluation error
// (error_mode: propagate) answers NotSampled, where contrib skips the policy
// for that trace. Without the spans (t.HasSpans unset) it answers NotSampled.
func (p ottlCondition) Evaluate(t *Trace) Decision {
	if !t.HasSpans {
		return Decision{}
	}
	ctx := context.Background()
	failed := false
	// stop ends the walk at the first condition that holds or fails.
	stop := func(ok bool, err error) bool {
		failed = err != nil
		return failed || ok
	}
	found := eachSpan(t.Spans, func(rs ptrace.ResourceSpans, ss ptrace.ScopeSpans, span ptrace.Span) bool {
		if p.span != nil {
			tCtx := ottlspan.NewTransformContext(rs, ss, span)
			ok, err := p.span.Eval(ctx, tCtx)
			tCtx.Close()
			if stop(ok, err) {
				return true
			}
		}
		if p.spanEvent == nil {
			return false
		}
		events := span.Events()
		for l := 0; l < events.Len(); l++ {
			tCtx := ottlspanevent.NewTransformContext(rs, ss, span, events.At(l))
			ok, err := p.spanEvent.Eval(ctx, tCtx)
			tCtx.Close()
			if stop(ok, err) {
				return true
			}
		}
		return false
	})
	if found && !failed {
		return keepAlways
	}
	return Decision{}
}
