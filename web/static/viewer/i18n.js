// @ts-check
/**
 * Viewer strings, French (default) and English.
 * Every visible string of the viewer comes from here.
 * Must not touch `document` at import time.
 */

/** @typedef {'fr' | 'en'} Lang */

const fr = {
  'toolbar.label': 'Barre d’outils du bureau à distance',
  'toolbar.back': 'Retour au portail',
  'toolbar.cad': 'Envoyer Ctrl+Alt+Suppr',
  'toolbar.scaleFit': 'Ajuster à la fenêtre',
  'toolbar.scaleActual': 'Taille réelle (1:1)',
  'toolbar.fullscreen': 'Plein écran',
  'toolbar.exitFullscreen': 'Quitter le plein écran',
  'toolbar.status': 'État de la connexion',

  'state.connecting': 'Connexion…',
  'state.connected': 'Connecté',
  'state.reconnecting': 'Reconnexion…',
  'state.ended': 'Session terminée',
  'state.error': 'Erreur',
  'status.hostConnecting': 'Connexion à l’ordinateur distant…',

  'canvas.label': 'Bureau à distance : {name}',
  'canvas.labelNoName': 'Bureau à distance',

  'notice.session.connecting': 'La passerelle se connecte à l’ordinateur distant…',
  'notice.session.ended': 'La session a été fermée par l’ordinateur distant.',
  'notice.session.auth_failed': 'L’ordinateur distant a refusé l’authentification de la passerelle. Contactez le support.',
  'notice.session.unreachable': 'L’ordinateur distant est injoignable. Réessayez plus tard ou contactez le support.',
  'notice.session.protocol_error': 'L’ordinateur distant a envoyé des données que la passerelle ne comprend pas. La session a été interrompue.',
  'notice.session.too_large': 'Le bureau distant dépasse les limites autorisées (taille d’écran ou de mise à jour).',
  'notice.viewer.bad_message': 'Le navigateur a envoyé un message invalide. Rechargez la page.',
  'notice.viewer.timeout': 'L’affichage ne répondait plus : la connexion a été fermée.',
  'notice.gateway.shutdown': 'La passerelle s’arrête ou redémarre. Reconnectez-vous dans quelques instants.',
  'notice.session.certificate_mismatch': 'Le certificat de l’ordinateur distant ne correspond pas à celui enregistré. Par sécurité, la connexion est refusée : prévenez le support.',
  'notice.session.certificate_untrusted': 'Le certificat de l’ordinateur distant n’est pas encore approuvé. Un administrateur doit l’approuver avant la première connexion.',
  'notice.session.refused': 'L’ordinateur distant a refusé la session (serveur plein, ou connexion non autorisée). Réessayez plus tard ou contactez le support.',
  'notice.session.idle_timeout': 'Session fermée après une trop longue inactivité (règle de votre service). Relancez la ressource depuis le portail.',
  'notice.session.logged_off': 'Vous avez fermé cette session depuis le portail. Relancez la ressource pour en ouvrir une nouvelle.',
  'notice.session.ended_by_staff': 'L’assistance a fermé cette session. Relancez la ressource depuis le portail si besoin.',
  'notice.control.busy': 'Une autre demande de prise en main est déjà en cours sur cette session.',
  'notice.session.disconnected_by_staff': 'L’assistance a déconnecté votre affichage. Votre session reste ouverte sur l’ordinateur distant : vous pouvez vous reconnecter.',
  'notice.session.disconnected_timeout': 'Cette session est restée déconnectée trop longtemps et a été fermée. Relancez la ressource depuis le portail.',
  'notice.session.released': 'Personne n’a repris la session : la passerelle l’a libérée, le bureau reste ouvert sur l’ordinateur distant. Relancez pour le retrouver.',
  'notice.unknown': 'Message de la session : {code}',

  'title.error': 'Erreur',
  'title.warning': 'Avertissement',
  'title.ended': 'Session terminée',
  'title.disconnected': 'Session déconnectée',
  'title.lost': 'Connexion perdue',
  'title.launch': 'Impossible d’ouvrir la session',

  'error.lost': 'La connexion avec la passerelle a été perdue.',
  'error.network': 'La passerelle est injoignable. Vérifiez votre connexion réseau.',
  'error.http': 'La passerelle a répondu par une erreur (HTTP {status}).',
  'error.badResponse': 'Réponse inattendue de la passerelle.',
  'error.protocol': 'Données invalides reçues de la passerelle.',
  'error.version': 'Cette version du visualiseur n’est pas compatible avec la passerelle. Rechargez la page.',
  'error.noResource': 'Aucune ressource n’est indiquée pour cette page.',
  'error.canvas': 'Votre navigateur ne peut pas afficher le bureau distant.',
  'error.websocket': 'Votre navigateur ne prend pas en charge les WebSockets.',

  'overlay.details': 'Détails techniques (pour le support)',
  'overlay.reconnect': 'Se reconnecter',
  'overlay.back': 'Retour au portail',
  'overlay.dismiss': 'Fermer',

  'toast.clipboard': 'Presse-papiers distant mis à jour',

  'message.from': 'Message de l’assistance ({name}) :',
  'message.fromHelpdesk': 'Message de l’assistance :',
  'message.dismiss': 'Fermer',
  'message.dismissLabel': 'Fermer le message de l’assistance',

  'helpdesk.someone': 'L’assistance',
  'helpdesk.user': 'l’utilisateur',

  'control.askTitle': 'Prise de main',
  'control.ask': '{name} demande à prendre la main sur votre session.',
  'control.accept': 'Accepter',
  'control.refuse': 'Refuser',
  'control.granted': '{name} a la main',
  'control.takeBack': 'Reprendre la main',
  'control.endedToast': 'La prise de main est terminée.',

  'shadow.title': 'Session de {name}',
  'shadow.readOnly': 'Observation en lecture seule de la session de {name}',
  'shadow.watching': 'Observation de la session de {name}',
  'shadow.pending': 'Demande envoyée : en attente de la réponse de {name}…',
  'shadow.granted': 'Vous avez la main sur la session de {name}',
  'shadow.refused': '{name} a refusé la prise de main. Observation en lecture seule.',
  'shadow.request': 'Demander la main',
  'shadow.cancel': 'Annuler la demande',
  'shadow.release': 'Rendre la main',
};

/** @type {Record<keyof typeof fr, string>} */
const en = {
  'toolbar.label': 'Remote desktop toolbar',
  'toolbar.back': 'Back to portal',
  'toolbar.cad': 'Send Ctrl+Alt+Del',
  'toolbar.scaleFit': 'Scale to fit window',
  'toolbar.scaleActual': 'Actual size (1:1)',
  'toolbar.fullscreen': 'Full screen',
  'toolbar.exitFullscreen': 'Exit full screen',
  'toolbar.status': 'Connection state',

  'state.connecting': 'Connecting…',
  'state.connected': 'Connected',
  'state.reconnecting': 'Reconnecting…',
  'state.ended': 'Session ended',
  'state.error': 'Error',
  'status.hostConnecting': 'Connecting to the remote computer…',

  'canvas.label': 'Remote desktop: {name}',
  'canvas.labelNoName': 'Remote desktop',

  'notice.session.connecting': 'The gateway is connecting to the remote computer…',
  'notice.session.ended': 'The remote computer closed the session.',
  'notice.session.auth_failed': 'The remote computer refused the gateway’s credentials. Please contact support.',
  'notice.session.unreachable': 'The remote computer cannot be reached. Try again later or contact support.',
  'notice.session.protocol_error': 'The remote computer sent data the gateway could not understand. The session was interrupted.',
  'notice.session.too_large': 'The remote desktop exceeds the allowed limits (screen or update size).',
  'notice.viewer.bad_message': 'The browser sent an invalid message. Please reload the page.',
  'notice.viewer.timeout': 'The display stopped responding, so the connection was closed.',
  'notice.gateway.shutdown': 'The gateway is stopping or restarting. Reconnect in a few moments.',
  'notice.session.certificate_mismatch': 'The remote computer’s certificate does not match the recorded one. For your safety the connection is refused: tell the helpdesk.',
  'notice.session.certificate_untrusted': 'The remote computer’s certificate is not approved yet. An administrator must approve it before the first connection.',
  'notice.session.refused': 'The remote computer refused the session (server full, or connection not allowed). Try again later or contact the helpdesk.',
  'notice.session.idle_timeout': 'The session was closed after too long without activity (your organisation’s rule). Launch the resource again from the portal.',
  'notice.session.logged_off': 'You logged off this session from the portal. Launch the resource again to open a new one.',
  'notice.session.ended_by_staff': 'The helpdesk closed this session. Launch the resource again from the portal if needed.',
  'notice.control.busy': 'Another control request is already in progress on this session.',
  'notice.session.disconnected_by_staff': 'The helpdesk disconnected your display. Your session stays open on the remote computer: you can reconnect.',
  'notice.session.disconnected_timeout': 'This session stayed disconnected too long and was closed. Launch the resource again from the portal.',
  'notice.session.released': 'Nobody came back to the session: the gateway released it, and the desktop stays open on the remote computer. Launch again to find it.',
  'notice.unknown': 'Session message: {code}',

  'title.error': 'Error',
  'title.warning': 'Warning',
  'title.ended': 'Session ended',
  'title.disconnected': 'Session disconnected',
  'title.lost': 'Connection lost',
  'title.launch': 'Could not open the session',

  'error.lost': 'The connection to the gateway was lost.',
  'error.network': 'The gateway cannot be reached. Check your network connection.',
  'error.http': 'The gateway answered with an error (HTTP {status}).',
  'error.badResponse': 'Unexpected answer from the gateway.',
  'error.protocol': 'Invalid data received from the gateway.',
  'error.version': 'This viewer version is not compatible with the gateway. Please reload the page.',
  'error.noResource': 'No resource is given for this page.',
  'error.canvas': 'Your browser cannot display the remote desktop.',
  'error.websocket': 'Your browser does not support WebSockets.',

  'overlay.details': 'Technical details (for support)',
  'overlay.reconnect': 'Reconnect',
  'overlay.back': 'Back to portal',
  'overlay.dismiss': 'Close',

  'toast.clipboard': 'Remote clipboard updated',

  'message.from': 'Message from the helpdesk ({name}):',
  'message.fromHelpdesk': 'Message from the helpdesk:',
  'message.dismiss': 'Close',
  'message.dismissLabel': 'Close the helpdesk message',

  'helpdesk.someone': 'The helpdesk',
  'helpdesk.user': 'the user',

  'control.askTitle': 'Remote control',
  'control.ask': '{name} asks to take control of your session.',
  'control.accept': 'Accept',
  'control.refuse': 'Refuse',
  'control.granted': '{name} has control',
  'control.takeBack': 'Take back control',
  'control.endedToast': 'Remote control has ended.',

  'shadow.title': '{name}’s session',
  'shadow.readOnly': 'Read-only view of {name}’s session',
  'shadow.watching': 'Viewing {name}’s session',
  'shadow.pending': 'Request sent: waiting for {name} to answer…',
  'shadow.granted': 'You have control of {name}’s session',
  'shadow.refused': '{name} refused to give control. Read-only view.',
  'shadow.request': 'Request control',
  'shadow.cancel': 'Cancel the request',
  'shadow.release': 'Give back control',
};

/** @typedef {keyof typeof fr} MessageKey */

/** @type {Record<Lang, Record<string, string>>} */
export const dictionaries = { fr, en };

/**
 * The page language: `document.documentElement.lang` ('fr' unless it is English).
 * @returns {Lang}
 */
export function pageLang() {
  const lang = typeof document !== 'undefined' ? document.documentElement.lang : '';
  return normalizeLang(lang);
}

/**
 * @param {string | null | undefined} lang
 * @returns {Lang}
 */
export function normalizeLang(lang) {
  return (lang || '').toLowerCase().startsWith('en') ? 'en' : 'fr';
}

/**
 * Translate `key`; `{name}` placeholders are replaced from `vars`.
 * Unknown keys fall back to French, then to the key itself.
 * @param {string} key
 * @param {string} [lang] defaults to the page language
 * @param {Record<string, string | number>} [vars]
 * @returns {string}
 */
export function t(key, lang, vars) {
  const l = lang ? normalizeLang(lang) : pageLang();
  let s = dictionaries[l][key] ?? dictionaries.fr[key] ?? key;
  if (vars) {
    s = s.replace(/\{(\w+)\}/g, (m, name) =>
      Object.prototype.hasOwnProperty.call(vars, name) ? String(vars[name]) : m);
  }
  return s;
}

/**
 * Translated text of a Notice code, or null when the code is unknown.
 * @param {string} code
 * @param {string} [lang]
 * @returns {string | null}
 */
export function noticeText(code, lang) {
  const key = `notice.${code}`;
  const l = lang ? normalizeLang(lang) : pageLang();
  return Object.prototype.hasOwnProperty.call(dictionaries[l], key) ? dictionaries[l][key] : null;
}
