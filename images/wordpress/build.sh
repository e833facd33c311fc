#!/usr/bin/env bash
# version: 6.1.9-deb12
# ref: localhost/storefleet/wordpress:6.1.9-deb12
# WordPress from Debian 12's package (6.1 on PHP 8.2) served by Apache with mod_php,
# laid out the way the woocommerce chart expects of its WordPress image: the
# WordPress files under /usr/src/wordpress (copied into the Pod's docroot,
# /var/www/html, by an init container) with wp-config-docker.php, which reads the
# database settings from the environment (WORDPRESS_DB_*). php-cli is included: the
# chart's set-up runs WordPress's own installer with it (no wp-cli in Debian).
set -euo pipefail
. ../debian.sh
DEBIAN_HOOKS=()
debian_rootfs "$ROOTFS" bookworm wordpress wordpress-theme-twentytwentythree apache2 libapache2-mod-php8.2 php8.2-cli php8.2-mysql php8.2-gd php8.2-curl php8.2-xml php8.2-mbstring php8.2-zip php8.2-intl mariadb-client
# Debian's package is spread over /usr/share/wordpress (symlinks into
# /usr/share/javascript and /etc/wordpress) and /var/lib/wordpress/wp-content; a
# docroot copied into a volume needs real files, so links are resolved here.
mkdir -p "$ROOTFS/usr/src"
chroot "$ROOTFS" cp -rL /usr/share/wordpress /usr/src/wordpress
rm -rf "$ROOTFS/usr/src/wordpress/wp-content" "$ROOTFS/usr/src/wordpress/wp-config.php"
chroot "$ROOTFS" cp -rL /var/lib/wordpress/wp-content /usr/src/wordpress/wp-content
install -m 0644 wp-config-docker.php "$ROOTFS/usr/src/wordpress/wp-config-docker.php"
chroot "$ROOTFS" chown -R www-data:www-data /usr/src/wordpress
install -m 0755 start.sh "$ROOTFS/usr/local/bin/storefleet-wordpress"
install -m 0644 apache.conf "$ROOTFS/etc/apache2/conf-available/storefleet.conf"
chroot "$ROOTFS" a2enconf storefleet >/dev/null
chroot "$ROOTFS" a2enmod rewrite >/dev/null
rm -rf "$ROOTFS/var/www/html"/* "$ROOTFS/var/lib/apt/lists"/*
chown www-data:www-data "$ROOTFS/var/www/html" 2>/dev/null || chroot "$ROOTFS" chown www-data:www-data /var/www/html
echo '{"Entrypoint":["/usr/local/bin/storefleet-wordpress"],"Cmd":[],"WorkingDir":"/var/www/html","Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"ExposedPorts":{"80/tcp":{}}}' > "$CONFIG"
