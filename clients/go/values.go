package featurestore

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	featurestorev1 "github.com/featurestore/featurestore/clients/go/gen/featurestore/v1"
)

// Scalar is the Go value of a wire Value: nil when unset (null).
func Scalar(v *featurestorev1.Value) any {
	switch k := v.GetKind().(type) {
	case *featurestorev1.Value_DoubleValue:
		return k.DoubleValue
	case *featurestorev1.Value_FloatValue:
		return k.FloatValue
	case *featurestorev1.Value_Int64Value:
		return k.Int64Value
	case *featurestorev1.Value_Int32Value:
		return k.Int32Value
	case *featurestorev1.Value_StringValue:
		return k.StringValue
	case *featurestorev1.Value_BoolValue:
		return k.BoolValue
	case *featurestorev1.Value_BytesValue:
		return k.BytesValue
	case *featurestorev1.Value_UnixTimestampValue:
		return time.Unix(k.UnixTimestampValue, 0).UTC()
	}
	return nil
}

// ToValue is the wire Value of a Go value (entity keys and inline features).
func ToValue(x any) (*featurestorev1.Value, error) {
	switch x := x.(type) {
	case nil:
		return &featurestorev1.Value{}, nil
	case string:
		return &featurestorev1.Value{Kind: &featurestorev1.Value_StringValue{StringValue: x}}, nil
	case int:
		return &featurestorev1.Value{Kind: &featurestorev1.Value_Int64Value{Int64Value: int64(x)}}, nil
	case int64:
		return &featurestorev1.Value{Kind: &featurestorev1.Value_Int64Value{Int64Value: x}}, nil
	case int32:
		return &featurestorev1.Value{Kind: &featurestorev1.Value_Int32Value{Int32Value: x}}, nil
	case float64:
		return &featurestorev1.Value{Kind: &featurestorev1.Value_DoubleValue{DoubleValue: x}}, nil
	case float32:
		return &featurestorev1.Value{Kind: &featurestorev1.Value_FloatValue{FloatValue: x}}, nil
	case bool:
		return &featurestorev1.Value{Kind: &featurestorev1.Value_BoolValue{BoolValue: x}}, nil
	case []byte:
		return &featurestorev1.Value{Kind: &featurestorev1.Value_BytesValue{BytesValue: x}}, nil
	case time.Time:
		return &featurestorev1.Value{Kind: &featurestorev1.Value_UnixTimestampValue{UnixTimestampValue: x.Unix()}}, nil
	}
	return nil, fmt.Errorf("featurestore: no wire Value for %T", x)
}

// valueLists is the wire form of a request's entities (join key to one value per row); a value
// with no wire Value is an error naming it as the Python SDK does: entities["symbol"][2].
func valueLists(columns map[string][]any) (map[string]*featurestorev1.ValueList, error) {
	lists := make(map[string]*featurestorev1.ValueList, len(columns))
	for name, column := range columns {
		list := &featurestorev1.ValueList{Values: make([]*featurestorev1.Value, len(column))}
		for i, x := range column {
			v, err := ToValue(x)
			if err != nil {
				return nil, fmt.Errorf("featurestore: entities[%q][%d]: a %T has no wire Value (give a string, an integer, a float, a bool, []byte or a time.Time)", name, i, x)
			}
			list.Values[i] = v
		}
		lists[name] = list
	}
	return lists, nil
}

// optionalTime is a wire time as a Go one, nil when unset.
func optionalTime(t *timestamppb.Timestamp) *time.Time {
	if t == nil {
		return nil
	}
	at := t.AsTime()
	return &at
}
