package k8sschema

import (
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/kube-openapi/pkg/validation/strfmt"
)

// quantityDef is the Quantity schema. The spec gives it only as oneOf [string, number], which takes any
// string ("512MB", "1 core"); the API server then refuses such a value in code. So the string branch gets
// the format "quantity", checked with the parser the API server uses.
const quantityDef = "io.k8s.apimachinery.pkg.api.resource.Quantity"

// formats is the registry the validator checks formats against: only "quantity". Other formats of the
// spec (date-time, int32, …) are not checked, as the kube-openapi default registry does not check them.
var formats = func() strfmt.Registry {
	r := strfmt.NewFormats()
	r.Add("quantity", &quantityFormat{}, func(s string) bool {
		_, err := resource.ParseQuantity(s)
		return err == nil
	})
	return r
}()

// quantityFormat is the registry's type for "quantity" values (the registry wants one; it is never used to
// parse).
type quantityFormat struct{}

func (quantityFormat) String() string                   { return "quantity" }
func (quantityFormat) MarshalText() ([]byte, error)     { return nil, nil }
func (*quantityFormat) UnmarshalText(text []byte) error { return nil }
