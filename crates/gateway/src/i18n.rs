//! French and English texts of the server-rendered pages and the HTTP errors.

/// A user-interface language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Lang {
    /// French, the default.
    #[default]
    Fr,
    /// English.
    En,
}

impl Lang {
    /// `fr` or `en`.
    pub(crate) fn code(self) -> &'static str {
        match self {
            Lang::Fr => "fr",
            Lang::En => "en",
        }
    }

    /// Parses `fr` / `en` (and regional variants such as `en-GB`).
    pub(crate) fn parse(value: &str) -> Option<Lang> {
        let primary = value.trim().split(['-', '_', ';']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "fr" => Some(Lang::Fr),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The first supported language of an `Accept-Language` header, French if none.
    pub(crate) fn from_accept_language(header: &str) -> Lang {
        header.split(',').find_map(Lang::parse).unwrap_or_default()
    }

    /// The other language (for the language switch).
    pub(crate) fn other(self) -> Lang {
        match self {
            Lang::Fr => Lang::En,
            Lang::En => Lang::Fr,
        }
    }
}

/// Returns the text for `key` in `lang`. Every key has both languages; an unknown key returns
/// itself so that a missing text is visible rather than blank.
pub(crate) fn t(lang: Lang, key: &str) -> &'static str {
    let pair = match key {
        "app.title" => ("Bascule — espace de travail à distance", "Bascule — remote workspace"),
        "lang.switch" => ("English", "Français"),
        "login.title" => ("Connexion", "Sign in"),
        "login.username" => ("Identifiant", "Username"),
        "login.password" => ("Mot de passe", "Password"),
        "login.submit" => ("Se connecter", "Sign in"),
        "login.failed" => ("Identifiant ou mot de passe incorrect.", "Wrong username or password."),
        "login.locked" => (
            "Ce compte est verrouillé après trop d'essais. Réessayez plus tard ou appelez l'assistance.",
            "This account is locked after too many attempts. Try again later or call the helpdesk.",
        ),
        "login.throttled" => (
            "Trop d'essais depuis votre adresse. Patientez quelques minutes.",
            "Too many attempts from your address. Wait a few minutes.",
        ),
        "login.csrf" => (
            "Le formulaire a expiré. Rechargez la page et recommencez.",
            "The form has expired. Reload the page and try again.",
        ),
        "portal.title" => ("Mes bureaux et applications", "My desktops and applications"),
        "portal.hello" => ("Bonjour,", "Hello,"),
        "portal.empty" => (
            "Aucune ressource ne vous est attribuée. Contactez l'assistance.",
            "No resource is assigned to you. Contact the helpdesk.",
        ),
        "portal.open" => ("Ouvrir", "Open"),
        "login.disabled" => (
            "Ce compte est désactivé. Appelez l'assistance.",
            "This account is disabled. Call the helpdesk.",
        ),
        "login.unavailable" => (
            "La connexion est impossible pour le moment (annuaire ou base de données injoignable). Réessayez dans quelques minutes ; si cela dure, appelez l'assistance.",
            "Signing in is not possible right now (directory or database unreachable). Try again in a few minutes; if it lasts, call the helpdesk.",
        ),
        "totp.title" => ("Code de vérification", "Verification code"),
        "totp.enrol_title" => ("Activer la double authentification", "Set up two-step verification"),
        "totp.enrol_intro" => (
            "Scannez ce code avec votre application d'authentification (FreeOTP, Google Authenticator, Microsoft Authenticator…), puis saisissez le code à 6 chiffres qu'elle affiche.",
            "Scan this code with your authenticator app (FreeOTP, Google Authenticator, Microsoft Authenticator…), then enter the 6-digit code it shows.",
        ),
        "totp.enrol_manual" => (
            "Impossible de scanner ? Saisissez cette clé dans l'application :",
            "Cannot scan? Enter this key in the app:",
        ),
        "totp.ask" => (
            "Saisissez le code à 6 chiffres affiché par votre application d'authentification.",
            "Enter the 6-digit code shown by your authenticator app.",
        ),
        "totp.code" => ("Code à 6 chiffres", "6-digit code"),
        "totp.submit" => ("Valider", "Verify"),
        "totp.restart" => ("Recommencer la connexion", "Start signing in again"),
        "totp.wrong" => (
            "Code incorrect ou déjà utilisé. Vérifiez l'heure de votre téléphone et saisissez le code suivant.",
            "Wrong or already used code. Check your phone's clock and enter the next code.",
        ),
        "totp.expired" => (
            "L'étape de vérification a expiré. Reconnectez-vous.",
            "The verification step has expired. Sign in again.",
        ),
        "sessions.title" => ("Mes sessions", "My sessions"),
        "sessions.none" => ("Aucune session en cours.", "No session running."),
        "sessions.active" => ("Connectée", "Connected"),
        "sessions.disconnected" => ("Déconnectée, en attente", "Disconnected, waiting"),
        "sessions.starting" => ("Démarrage", "Starting"),
        "sessions.since" => ("ouverte le", "opened"),
        "sessions.reconnect" => ("Reprendre", "Reconnect"),
        "sessions.logoff" => ("Fermer la session", "Log off"),
        "launch.no_licence" => (
            "Toutes les licences sont utilisées. Réessayez dans quelques minutes ; si c'est urgent, appelez l'assistance.",
            "All licences are in use. Try again in a few minutes; if it is urgent, call the helpdesk.",
        ),
        "launch.no_host" => (
            "Aucun serveur n'est disponible pour cette ressource (maintenance ou panne). Réessayez plus tard ou appelez l'assistance.",
            "No server is available for this resource (maintenance or failure). Try again later or call the helpdesk.",
        ),
        "launch.outside_hours" => (
            "Cette ressource n'est pas accessible à cette heure. Prochaine ouverture :",
            "This resource is not available at this time. Next opening:",
        ),
        "launch.unavailable" => (
            "Le lancement a échoué côté serveur. L'incident est enregistré ; réessayez ou appelez l'assistance.",
            "The launch failed on the server. It has been logged; try again or call the helpdesk.",
        ),
        "launch.client_target" => (
            "Requête refusée : le navigateur ne choisit ni serveur, ni port, ni identifiants.",
            "Request refused: the browser does not choose a server, a port or credentials.",
        ),
        "error.shadow_gone" => (
            "Cette session n'est plus ouverte sur cette passerelle.",
            "This session is no longer open on this gateway.",
        ),
        "error.ticket" => (
            "Ce lien de connexion n'est plus valable (déjà utilisé ou expiré). Relancez depuis le portail.",
            "This connection link is no longer valid (already used or expired). Launch again from the portal.",
        ),
        "portal.logout" => ("Se déconnecter", "Sign out"),
        "error.not_found" => ("Page introuvable.", "Page not found."),
        "error.forbidden" => ("Accès refusé.", "Access denied."),
        "error.not_entitled" => (
            "Cette ressource ne vous est pas attribuée.",
            "This resource is not assigned to you.",
        ),
        "error.unknown_resource" => ("Ressource inconnue.", "Unknown resource."),
        "error.csrf" => (
            "Requête refusée (jeton de sécurité absent ou invalide). Rechargez la page.",
            "Request refused (missing or invalid security token). Reload the page.",
        ),
        "error.not_logged_in" => ("Votre session a expiré. Reconnectez-vous.", "Your session has expired. Sign in again."),
        "error.bad_request" => ("Requête invalide.", "Invalid request."),
        "error.internal" => (
            "Erreur interne. L'incident est enregistré ; réessayez ou appelez l'assistance.",
            "Internal error. It has been logged; try again or call the helpdesk.",
        ),
        _ => return leak_key(key),
    };
    match lang {
        Lang::Fr => pair.0,
        Lang::En => pair.1,
    }
}

fn leak_key(key: &str) -> &'static str {
    // Unknown keys are programming errors caught by the test below; return a fixed marker
    // rather than leaking memory at run time.
    let _ = key;
    "[missing text]"
}

/// Escapes text for HTML element content and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_parse_from_headers() {
        assert_eq!(Lang::from_accept_language("en-GB,en;q=0.9,fr;q=0.8"), Lang::En);
        assert_eq!(Lang::from_accept_language("de-DE, fr-FR;q=0.5"), Lang::Fr);
        assert_eq!(Lang::from_accept_language(""), Lang::Fr);
    }

    #[test]
    fn known_keys_differ_between_languages() {
        for key in ["login.title", "login.locked", "portal.title", "error.not_entitled", "error.internal"] {
            assert_ne!(t(Lang::Fr, key), t(Lang::En, key), "{key}");
            assert_ne!(t(Lang::Fr, key), "[missing text]");
        }
    }

    #[test]
    fn escaping_neutralises_markup() {
        assert_eq!(escape("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    }
}
