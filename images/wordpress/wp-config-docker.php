<?php
/*
 * WordPress configuration read from the environment, so one image serves every store.
 * The woocommerce chart sets WORDPRESS_DB_HOST, WORDPRESS_DB_USER, WORDPRESS_DB_PASSWORD,
 * WORDPRESS_DB_NAME, WORDPRESS_TABLE_PREFIX, the WORDPRESS_*_KEY/_SALT secrets and
 * WORDPRESS_CONFIG_EXTRA; a value may also come from the file named by <NAME>_FILE.
 */
function storefleet_env(string $name, string $default = ''): string {
	$file = getenv($name . '_FILE');
	if ($file !== false && $file !== '' && is_readable($file)) {
		return rtrim((string) file_get_contents($file), "\r\n");
	}
	$v = getenv($name);
	return ($v === false) ? $default : $v;
}

define('DB_NAME', storefleet_env('WORDPRESS_DB_NAME', 'wordpress'));
define('DB_USER', storefleet_env('WORDPRESS_DB_USER', 'wordpress'));
define('DB_PASSWORD', storefleet_env('WORDPRESS_DB_PASSWORD'));
define('DB_HOST', storefleet_env('WORDPRESS_DB_HOST', 'mysql'));
define('DB_CHARSET', storefleet_env('WORDPRESS_DB_CHARSET', 'utf8mb4'));
define('DB_COLLATE', storefleet_env('WORDPRESS_DB_COLLATE'));

foreach (['AUTH_KEY', 'SECURE_AUTH_KEY', 'LOGGED_IN_KEY', 'NONCE_KEY',
          'AUTH_SALT', 'SECURE_AUTH_SALT', 'LOGGED_IN_SALT', 'NONCE_SALT'] as $k) {
	// An unset secret is a fixed string WordPress warns about on its health page,
	// never a random one: every replica must share the same value.
	define($k, storefleet_env('WORDPRESS_' . $k, 'unset-' . strtolower($k)));
}

$table_prefix = storefleet_env('WORDPRESS_TABLE_PREFIX', 'wp_');
define('WP_DEBUG', storefleet_env('WORDPRESS_DEBUG') !== '');

// Behind an ingress that terminates TLS.
if (isset($_SERVER['HTTP_X_FORWARDED_PROTO']) && strpos($_SERVER['HTTP_X_FORWARDED_PROTO'], 'https') !== false) {
	$_SERVER['HTTPS'] = 'on';
}

$extra = storefleet_env('WORDPRESS_CONFIG_EXTRA');
if ($extra !== '') {
	eval($extra);
}

if (!defined('ABSPATH')) {
	define('ABSPATH', __DIR__ . '/');
}
require_once ABSPATH . 'wp-settings.php';
