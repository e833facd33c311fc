package store

// Engine is the e-commerce software a store runs; each has its own chart in charts/<engine>.
type Engine string

const (
	WooCommerce Engine = "woocommerce"
	Medusa      Engine = "medusa"
)

// Engines lists every engine, in a fixed order (for help texts and tests).
var Engines = []Engine{WooCommerce, Medusa}

// DefaultVersion is the chart version a new store of each engine gets when none is asked for. The charts in
// charts/ start at 0.1.0.
var DefaultVersion = map[Engine]string{
	WooCommerce: "0.1.0",
	Medusa:      "0.1.0",
}

// Defaults that do not depend on the engine.
const (
	DefaultCluster    = "local"
	DefaultBaseDomain = "stores.localhost"
	DefaultCurrency   = "USD"
	DefaultCountry    = "US"
	DefaultLanguage   = "en_US"   // woocommerce
	DefaultRegionName = "Default" // medusa
)

// Store is one store as the platform teams request it. It holds typed settings only, never free-form Helm
// values: render maps these fields onto the chart values fixed in docs/design.md.
type Store struct {
	Name    string   `json:"name"`
	Engine  Engine   `json:"engine"`
	Plan    PlanName `json:"plan"`
	Cluster string   `json:"cluster,omitempty"`
	// Tenant owns the store: set at create (by the access policy when the request
	// names none), written into the store's files and trailers, immutable. A store
	// whose files name none belongs to the configured default tenant.
	Tenant   string   `json:"tenant,omitempty"`
	Domain   string   `json:"domain,omitempty"`
	Version  string   `json:"version,omitempty"`
	Settings Settings `json:"settings"`
}

// Settings are the store's own settings. Title, AdminEmail, Currency and Country apply to every engine;
// Language is for woocommerce only and RegionName for medusa only (Validate refuses them for the other engine,
// so a field never silently does nothing).
type Settings struct {
	Title      string `json:"title,omitempty"`
	AdminEmail string `json:"adminEmail"`
	Currency   string `json:"currency,omitempty"`
	Country    string `json:"country,omitempty"`
	Language   string `json:"language,omitempty"`
	RegionName string `json:"regionName,omitempty"`
}

// WithDefaults returns s with every empty optional field filled in. baseDomain is the cluster's base domain
// for the default store domain (<name>.<baseDomain>); empty means DefaultBaseDomain. Defaults are applied
// before Validate, so the stored and rendered store is always complete.
func (s Store) WithDefaults(baseDomain string) Store {
	if baseDomain == "" {
		baseDomain = DefaultBaseDomain
	}
	if s.Cluster == "" {
		s.Cluster = DefaultCluster
	}
	if s.Domain == "" && s.Name != "" {
		s.Domain = s.Name + "." + baseDomain
	}
	if s.Version == "" {
		s.Version = DefaultVersion[s.Engine]
	}
	if s.Settings.Title == "" {
		s.Settings.Title = s.Name
	}
	if s.Settings.Currency == "" {
		s.Settings.Currency = DefaultCurrency
	}
	if s.Settings.Country == "" {
		s.Settings.Country = DefaultCountry
	}
	switch s.Engine {
	case WooCommerce:
		if s.Settings.Language == "" {
			s.Settings.Language = DefaultLanguage
		}
	case Medusa:
		if s.Settings.RegionName == "" {
			s.Settings.RegionName = DefaultRegionName
		}
	}
	return s
}

// Namespace is the store's Kubernetes namespace.
func (s Store) Namespace() string { return NamespacePrefix + s.Name }

// NamespacePrefix begins every store namespace; store names may not begin with it themselves.
const NamespacePrefix = "store-"
