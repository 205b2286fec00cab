package featurestore

import (
	"fmt"
	"reflect"

	featurestorev1 "github.com/featurestore/featurestore/clients/go/gen/featurestore/v1"
)

// PredictOption adds to a Predict request: [WithInlineFeatures].
type PredictOption func(*featurestorev1.PredictRequest) error

// WithInlineFeatures gives Predict feature columns ("view:feature" to one value per entity row)
// that the server then does not read from the online store, as the Python SDK's
// inline_features. A value is a number (any Go integer or float type), or nil for a missing one,
// as is math.NaN(); either reaches the model as NaN. Another type is refused before the call,
// naming the value (`inline_features["v:f"][2]`); infinity is the server's INVALID_ARGUMENT.
func WithInlineFeatures(features map[string][]any) PredictOption {
	return func(req *featurestorev1.PredictRequest) error {
		if req.InlineFeatures == nil {
			req.InlineFeatures = make(map[string]*featurestorev1.ValueList, len(features))
		}
		for name, column := range features {
			list := &featurestorev1.ValueList{Values: make([]*featurestorev1.Value, len(column))}
			for i, x := range column {
				v, ok := inlineNumber(x)
				if !ok {
					return fmt.Errorf("featurestore: inline_features[%q][%d]: a %T is not a number (give a number, or nil for a missing value)", name, i, x)
				}
				list.Values[i] = v
			}
			req.InlineFeatures[name] = list
		}
		return nil
	}
}

// inlineNumber is the wire Value of an inline feature value: a double, or unset for nil. Any
// value whose kind is an integer or a float is a number, named numeric types included.
func inlineNumber(x any) (*featurestorev1.Value, bool) {
	if x == nil {
		return &featurestorev1.Value{}, true
	}
	var f float64
	switch v := reflect.ValueOf(x); v.Kind() {
	case reflect.Float32, reflect.Float64:
		f = v.Float()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		f = float64(v.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		f = float64(v.Uint())
	default:
		return nil, false
	}
	return &featurestorev1.Value{Kind: &featurestorev1.Value_DoubleValue{DoubleValue: f}}, true
}

// applyPredictOptions applies opts to req, stopping at the first error.
func applyPredictOptions(req *featurestorev1.PredictRequest, opts []PredictOption) error {
	for _, opt := range opts {
		if err := opt(req); err != nil {
			return err
		}
	}
	return nil
}
