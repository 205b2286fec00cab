package featurestore

import (
	"context"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	featurestorev1 "github.com/featurestore/featurestore/clients/go/gen/featurestore/v1"
)

// FeatureStatus says whether a value was found and is fresh (the Python SDK's FeatureStatus).
type FeatureStatus string

const (
	// StatusPresent: the value is present and within its view's TTL.
	StatusPresent FeatureStatus = "present"
	// StatusNullValue: the entity has a row, but this feature is null in it.
	StatusNullValue FeatureStatus = "null_value"
	// StatusNotFound: the entity has no row for this feature's view.
	StatusNotFound FeatureStatus = "not_found"
	// StatusOutsideMaxAge: the row is older than its view's TTL; the stale value is returned.
	StatusOutsideMaxAge FeatureStatus = "outside_max_age"
)

// StatusFromProto maps the wire enum. A number this package does not know (a status added by a
// newer server) and FEATURE_STATUS_UNSPECIFIED (never sent) read as [StatusNotFound], as in the
// Python SDK: the value is not one the caller can use, and the rest of the answer still is.
func StatusFromProto(s featurestorev1.FeatureStatus) FeatureStatus {
	switch s {
	case featurestorev1.FeatureStatus_FEATURE_STATUS_PRESENT:
		return StatusPresent
	case featurestorev1.FeatureStatus_FEATURE_STATUS_NULL_VALUE:
		return StatusNullValue
	case featurestorev1.FeatureStatus_FEATURE_STATUS_OUTSIDE_MAX_AGE:
		return StatusOutsideMaxAge
	}
	return StatusNotFound
}

// FeatureValue is one value, its status and the event time of the row it comes from.
type FeatureValue struct {
	// Value is nil (null or not found), float64, float32, int64, int32, string, bool, []byte,
	// or time.Time (a unix_timestamp_value).
	Value     any
	Status    FeatureStatus
	EventTime *time.Time // nil where not found
}

// OnlineFeatures is the answer of GetOnlineFeatures: one row per entity, in request order.
type OnlineFeatures struct {
	Entities map[string][]any          // the join key columns as requested
	Names    []string                  // "view:feature", in the server's order
	Features map[string][]FeatureValue // name to one value per entity row
}

// Len is the number of entity rows.
func (o *OnlineFeatures) Len() int {
	for _, column := range o.Entities {
		return len(column)
	}
	return 0
}

// Get is the value of feature name for entity row i.
func (o *OnlineFeatures) Get(name string, i int) FeatureValue { return o.Features[name][i] }

// FeatureSelector names the features to read: Refs ("view:feature") or a feature Service.
type FeatureSelector struct {
	Refs    []string
	Service string
}

func (f FeatureSelector) online(req *featurestorev1.GetOnlineFeaturesRequest) {
	if f.Service != "" {
		req.FeatureSelector = &featurestorev1.GetOnlineFeaturesRequest_FeatureService{FeatureService: f.Service}
	} else {
		req.FeatureSelector = &featurestorev1.GetOnlineFeaturesRequest_Features{
			Features: &featurestorev1.FeatureList{Features: f.Refs},
		}
	}
}

// GetOnlineFeatures reads the latest values of the selected features for the entities (join
// key, for example "symbol", to one value per row: string, int64 or int).
func (c *Client) GetOnlineFeatures(ctx context.Context, features FeatureSelector, entities map[string][]any) (*OnlineFeatures, error) {
	columns, err := valueLists(entities)
	if err != nil {
		return nil, err
	}
	req := &featurestorev1.GetOnlineFeaturesRequest{Entities: columns}
	features.online(req)
	resp, err := c.Features.GetOnlineFeatures(ctx, req)
	if err != nil {
		return nil, fromRPC(err)
	}
	result := &OnlineFeatures{
		Entities: entities,
		Names:    resp.GetFeatureNames(),
		Features: make(map[string][]FeatureValue, len(resp.GetColumns())),
	}
	for i, column := range resp.GetColumns() {
		values := make([]FeatureValue, len(column.GetStatuses()))
		for row := range values {
			values[row] = featureValue(column.GetValues(), column.GetStatuses(), column.GetEventTimestamps(), row)
		}
		result.Features[resp.GetFeatureNames()[i]] = values
	}
	return result, nil
}

func featureValue(values []*featurestorev1.Value, statuses []featurestorev1.FeatureStatus, times []*timestamppb.Timestamp, row int) FeatureValue {
	v := FeatureValue{Status: StatusFromProto(statuses[row])}
	if row < len(values) {
		v.Value = Scalar(values[row])
	}
	if row < len(times) && times[row] != nil && (times[row].GetSeconds() != 0 || times[row].GetNanos() != 0) {
		t := times[row].AsTime()
		v.EventTime = &t
	}
	return v
}
